import { SpanKind, SpanStatusCode, context, trace, type Tracer } from '@opentelemetry/api';
import { GatewayError } from '../errors';
import type { Interceptor } from './types';

/**
 * One span per call around all its attempts (each attempt adds a child span in the
 * exchange). Attributes never include keys or bodies.
 */
export function tracingInterceptor(tracer: Tracer, displayUrl: string): Interceptor {
  return (next) => async (request) => {
    const span = tracer.startSpan(`upstream ${request.method} ${request.path}`, {
      kind: SpanKind.INTERNAL,
      attributes: { 'http.request.method': request.method, 'url.full': `${displayUrl}${request.path}` },
    });
    try {
      const traceContext = trace.setSpan(context.active(), span);
      return await context.with(traceContext, () => next({ ...request, traceContext }));
    } catch (error) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof GatewayError ? error.code : 'ABORTED',
      });
      throw error;
    } finally {
      span.setAttribute('upstream.attempts', request.stats.attempts);
      span.end();
    }
  };
}
