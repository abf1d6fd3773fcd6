import { SpanKind, SpanStatusCode, context, propagation, type Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { UpstreamMetrics } from '../telemetry/metrics';
import { chain } from '../lib/chain';
import { contextWithSpan } from '../telemetry/instruments';
import { TransportError } from './errors';
import { headerValue, withRequest, wrapHandler, type ErrorType, type Interceptor } from './types';

export interface AttemptTelemetryOptions {
  tracer: Tracer;
  /** Records `http.client.request.duration`. */
  metrics: UpstreamMetrics;
  logger: Logger;
  /** Origin plus base path, for `url.full` and the server attributes. */
  displayUrl: string;
  /** Response header carrying the upstream's trace id (DeepSeek: `x-ds-trace-id`). */
  traceIdHeader?: string;
  errorType: ErrorType;
  /** Clock in milliseconds (default `performance.now`). */
  now?: () => number;
}

/**
 * The innermost policy, one run per HTTP exchange: a CLIENT span (`POST /chat/completions`)
 * under the call span, the W3C `traceparent` of that span on the outgoing request, the
 * exchange's duration as `http.client.request.duration` and one `upstream exchange` debug
 * log line. All end when the exchange does (for a stream, when its body closes). Never
 * records keys (only their fingerprint) or bodies.
 */
export function attemptTelemetry(options: AttemptTelemetryOptions): Interceptor {
  const { tracer, metrics, logger, errorType } = options;
  const now = options.now ?? (() => performance.now());
  const server = new URL(options.displayUrl);
  const serverPort = server.port ? Number(server.port) : undefined;

  return (next) => (request, handler) => {
    const started = now();
    const attempt = request.retry?.attempt ?? 1;
    const retryReason = request.retry?.reason;
    const keyFingerprint = request.key?.fingerprint;
    const parent = request.traceContext ?? context.active();
    const span = tracer.startSpan(`${request.method} ${request.path}`, { kind: SpanKind.CLIENT }, parent);
    // Built only for a span that records (see callTelemetry).
    if (span.isRecording()) {
      span.setAttributes({
        'http.request.method': request.method,
        'url.full': `${options.displayUrl}${request.path}`,
        'http.request.resend_count': attempt - 1,
        'upstream.attempt': attempt,
        ...(retryReason ? { 'upstream.retry_reason': retryReason } : {}),
        ...(keyFingerprint ? { 'upstream.key_fingerprint': keyFingerprint } : {}),
      });
    }
    // A copy the propagator may add to (Object.assign: see `withRequest` on spreads).
    const headers: Record<string, string> = Object.assign({}, request.headers);
    // W3C trace context for the upstream (a no-op without an SDK and a propagator).
    propagation.inject(contextWithSpan(parent, span), headers);

    // Filled in once the response headers are in (or from the error when there were none).
    const seen: { status?: number; traceId?: string } = {};
    let ended = false;
    const end = (error: unknown): void => {
      if (ended) return;
      ended = true;
      const type = error === undefined ? undefined : errorType(error);
      if (seen.status !== undefined) span.setAttribute('http.response.status_code', seen.status);
      if (seen.traceId) span.setAttribute('upstream.trace_id', seen.traceId);
      if (type) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: type });
        span.setAttribute('error.type', type);
      }
      span.end();
      const durationMs = now() - started;
      metrics.attempt({
        method: request.method,
        path: request.path,
        serverAddress: server.hostname,
        serverPort,
        status: seen.status,
        errorType: type,
        seconds: durationMs / 1000,
      });
      // The line's fields are built only when it is written (the default level is info).
      if (!logger.isLevelEnabled('debug')) return;
      logger.debug(
        {
          method: request.method,
          path: request.path,
          status: seen.status,
          attempt,
          traceId: seen.traceId,
          keyFingerprint,
          durationMs: Math.round(durationMs),
          ...(type ? { error: type } : {}),
        },
        'upstream exchange',
      );
    };

    return chain(
      () =>
        next(
          withRequest(request, { headers }),
          wrapHandler(handler, {
            onResponse(response) {
              seen.status = response.status;
              seen.traceId = options.traceIdHeader ? headerValue(response.headers, options.traceIdHeader) : undefined;
              return handler.onResponse(response);
            },
            onResponseEnd(error) {
              end(error);
              handler.onResponseEnd?.(error);
            },
          }),
        ),
      undefined,
      (error) => {
        if (error instanceof TransportError) {
          seen.status ??= error.status;
          seen.traceId ??= error.traceId;
        }
        end(error);
        throw error;
      },
    );
  };
}
