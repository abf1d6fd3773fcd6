import { SpanKind, SpanStatusCode, context, trace, type Tracer } from '@opentelemetry/api';
import { GatewayError, UpstreamError } from '../errors';
import type { UpstreamMetrics } from '../telemetry/metrics';
import type { Interceptor } from './types';

/**
 * One span per call around all its attempts (each attempt adds a child span in the
 * exchange), and the call's duration and outcome as a metric. Both end when the call is
 * over: for a stream, when its body closes. The parent is the caller's
 * `traceContext` when given (the GraphQL operation), else the active context. Attributes
 * never include keys or bodies.
 */
export function tracingInterceptor(tracer: Tracer, displayUrl: string, metrics?: UpstreamMetrics): Interceptor {
  return (next) => async (request) => {
    const started = performance.now();
    const parent = request.traceContext ?? context.active();
    const span = tracer.startSpan(
      `upstream ${request.method} ${request.path}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: { 'http.request.method': request.method, 'url.full': `${displayUrl}${request.path}`, ...request.spanAttributes },
      },
      parent,
    );
    let outcome = 'ok';
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      span.setAttribute('upstream.attempts', request.stats.attempts);
      span.end();
      metrics?.call({ method: request.method, path: request.path, outcome, seconds: (performance.now() - started) / 1000 });
    };
    try {
      const traceContext = trace.setSpan(parent, span);
      // A stream's call is over when its body is, not when its headers are in.
      const onExchangeEnd = request.streaming
        ? () => {
            end();
            request.onExchangeEnd?.();
          }
        : request.onExchangeEnd;
      const value = await context.with(traceContext, () => next({ ...request, traceContext, onExchangeEnd }));
      if (request.describe && span.isRecording()) span.setAttributes(request.describe(value));
      if (!request.streaming) end();
      return value;
    } catch (error) {
      outcome = error instanceof GatewayError ? error.code : 'ABORTED';
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      span.setAttribute('error.type', outcome);
      if (error instanceof UpstreamError) {
        if (error.details.status !== undefined) span.setAttribute('http.response.status_code', error.details.status);
        if (error.details.traceId) span.setAttribute('upstream.trace_id', error.details.traceId);
      }
      end();
      throw error;
    }
  };
}
