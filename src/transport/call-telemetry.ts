import { SpanKind, SpanStatusCode, context, type Tracer } from '@opentelemetry/api';
import type { UpstreamMetrics } from '../telemetry/metrics';
import { chain } from '../lib/chain';
import { contextWithSpan } from '../telemetry/instruments';
import { TransportError } from './errors';
import { withRequest, wrapHandler, type ErrorType, type Interceptor } from './types';

export interface CallTelemetryOptions {
  tracer: Tracer;
  /** Records `gateway.upstream.call.duration`. */
  metrics: UpstreamMetrics;
  /** Origin plus base path, for `url.full`. */
  displayUrl: string;
  errorType: ErrorType;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

/**
 * The outermost policy: one span per call around all its attempts, and the call's duration
 * and outcome as a metric, both ending when the call is over (for a stream, when its body
 * closes). It counts the call's exchanges (`handler.onExchange`) for `upstream.attempts`
 * and puts that count on the `TransportError` the call fails with. The parent is the
 * request's `traceContext` when given (the GraphQL operation), else the active context;
 * inner policies get the call span's context. Attributes never include keys or bodies.
 */
export function callTelemetry(options: CallTelemetryOptions): Interceptor {
  const { tracer, metrics, errorType } = options;
  const now = options.now ?? (() => performance.now());

  return (next) => (request, handler) => {
    const started = now();
    const parent = request.traceContext ?? context.active();
    const span = tracer.startSpan(`upstream ${request.method} ${request.path}`, { kind: SpanKind.INTERNAL }, parent);
    // Built only for a span that records: with traces off (the default) every call would
    // otherwise make and drop them.
    if (span.isRecording()) {
      span.setAttributes({ 'http.request.method': request.method, 'url.full': `${options.displayUrl}${request.path}`, ...request.spanAttributes });
    }
    const traceContext = contextWithSpan(parent, span);
    let attempts = 0;
    let ended = false;
    const end = (error: unknown): void => {
      if (ended) return;
      ended = true;
      const outcome = error === undefined ? 'ok' : errorType(error);
      if (error !== undefined) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
        span.setAttribute('error.type', outcome);
      }
      if (error instanceof TransportError) {
        if (error.status !== undefined) span.setAttribute('http.response.status_code', error.status);
        if (error.traceId) span.setAttribute('upstream.trace_id', error.traceId);
      }
      span.setAttribute('upstream.attempts', attempts);
      span.end();
      metrics.call({ method: request.method, path: request.path, outcome, seconds: (now() - started) / 1000 });
    };

    return chain(
      () =>
        context.with(traceContext, () =>
          next(
            withRequest(request, { traceContext }),
            wrapHandler(handler, {
              onExchange() {
                attempts += 1;
                handler.onExchange?.();
              },
              onResponse(response) {
                if (!handler.describe) return handler.onResponse(response);
                return handler.onResponse(response).then((value) => {
                  if (span.isRecording()) span.setAttributes(handler.describe!(value));
                  return value;
                });
              },
              onResponseEnd(error) {
                end(error);
                handler.onResponseEnd?.(error);
              },
            }),
          ),
        ),
      undefined,
      (error) => {
        const failure = error instanceof TransportError ? error.with({ attempts }) : error;
        end(failure);
        throw failure;
      },
    );
  };
}
