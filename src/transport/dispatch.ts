import { SpanKind, SpanStatusCode, context, propagation, trace, type Tracer } from '@opentelemetry/api';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { GatewayError, UpstreamError } from '../errors';
import type { UpstreamMetrics } from '../telemetry/metrics';
import { abortReason, linkSignals, type LinkedSignal } from '../lib/abort';
import { parseRetryAfter } from './retry-after';
import type { Classifier, Dispatch, ResponseHeaders } from './types';

const ERROR_BODY_LIMIT = 64 * 1024;

export interface ExchangeOptions {
  dispatcher: Dispatcher;
  basePath: string;
  displayUrl: string;
  classify: Classifier;
  logger: Logger;
  tracer: Tracer;
  /** Response header carrying the upstream's trace id (DeepSeek: `x-ds-trace-id`). */
  traceIdHeader?: string;
  /** Removes secrets from error bodies before anyone reads them. */
  scrub: (text: string) => string;
  /** Controllers of exchanges in flight, so `close()` can abort them. */
  inFlight: Set<AbortController>;
  /** Records `http.client.request.duration` per exchange. */
  metrics?: UpstreamMetrics;
}

export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads at most `limit` bytes of a body as text, then drops the rest. */
async function readLimited(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(buffer);
    size += buffer.length;
    if (size >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/**
 * The innermost dispatch: one HTTP exchange on the undici pool. It sends the request,
 * turns a non-2xx status or a socket error into a classified `UpstreamError`, and hands a
 * 2xx response to `consume`. Aborts (caller, deadline, shutdown) surface as the signal's
 * reason for the outer wrappers to name. One span and one debug log line per exchange.
 */
export function createExchange(options: ExchangeOptions): Dispatch {
  const { logger, tracer } = options;
  const server = new URL(options.displayUrl);
  const serverPort = server.port ? Number(server.port) : undefined;

  return async (request) => {
    request.stats.attempts += 1;
    const attempt = request.attempt ?? 1;
    const started = performance.now();
    const controller = new AbortController();
    options.inFlight.add(controller);
    let link: LinkedSignal = linkSignals(request.signal);
    const unlinkOnAbort = (): void => controller.abort(link.signal.reason);
    const watch = (linked: LinkedSignal): void => {
      if (linked.signal.aborted) controller.abort(linked.signal.reason);
      else linked.signal.addEventListener('abort', unlinkOnAbort, { once: true });
    };
    watch(link);

    const parent = request.traceContext ?? context.active();
    const span = tracer.startSpan(
      `${request.method} ${request.path}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': request.method,
          'url.full': `${options.displayUrl}${request.path}`,
          'http.request.resend_count': attempt - 1,
          'upstream.attempt': attempt,
          ...(request.retryReason ? { 'upstream.retry_reason': request.retryReason } : {}),
          ...(request.keyFingerprint ? { 'upstream.key_fingerprint': request.keyFingerprint } : {}),
        },
      },
      parent,
    );
    const headers = { ...request.headers };
    // W3C trace context for the upstream (a no-op without an SDK and a propagator).
    propagation.inject(trace.setSpan(parent, span), headers);

    // Filled in once the response headers are in.
    const seen: { status?: number; traceId?: string } = {};
    let finished = false;
    const finish = (error?: unknown): void => {
      if (finished) return;
      finished = true;
      link.signal.removeEventListener('abort', unlinkOnAbort);
      link.dispose();
      options.inFlight.delete(controller);
      if (seen.status !== undefined) span.setAttribute('http.response.status_code', seen.status);
      if (seen.traceId) span.setAttribute('upstream.trace_id', seen.traceId);
      const code = error instanceof GatewayError ? error.code : error ? 'ABORTED' : undefined;
      if (code) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        span.setAttribute('error.type', code);
      }
      span.end();
      options.metrics?.attempt({
        method: request.method,
        path: request.path,
        serverAddress: server.hostname,
        serverPort,
        status: seen.status,
        errorType: code,
        seconds: (performance.now() - started) / 1000,
      });
      logger.debug(
        {
          method: request.method,
          path: request.path,
          status: seen.status,
          attempt,
          traceId: seen.traceId,
          keyFingerprint: request.keyFingerprint,
          durationMs: Math.round(performance.now() - started),
          ...(code ? { error: code } : {}),
        },
        'upstream exchange',
      );
    };
    // Aborts surface raw (the deadline wrapper names them); everything else is classified.
    const fail = (error: unknown): never => {
      const failure = controller.signal.aborted
        ? abortReason(controller.signal)
        : error instanceof UpstreamError
          ? error
          : options.classify({ kind: 'network', error, keyFingerprint: request.keyFingerprint });
      finish(failure);
      throw failure;
    };

    let response: Dispatcher.ResponseData;
    try {
      response = await options.dispatcher.request({
        method: request.method,
        path: `${options.basePath}${request.path}`,
        headers,
        body: request.body,
        signal: controller.signal,
      });
    } catch (error) {
      return fail(error);
    }

    const { body, statusCode } = response;
    const responseHeaders = response.headers as ResponseHeaders;
    // Destroying an unread body emits 'error'; nobody may be listening by then.
    body.on('error', () => undefined);
    seen.status = statusCode;
    seen.traceId = options.traceIdHeader ? headerValue(responseHeaders, options.traceIdHeader) : undefined;

    if (statusCode < 200 || statusCode >= 300) {
      let text = '';
      try {
        text = options.scrub(await readLimited(body, ERROR_BODY_LIMIT));
      } catch {
        // A status without a readable body is still a status.
      }
      body.destroy();
      if (controller.signal.aborted) return fail(undefined);
      return fail(
        options.classify({
          kind: 'status',
          status: statusCode,
          headers: responseHeaders,
          body: text,
          retryAfterMs: parseRetryAfter(responseHeaders['retry-after']),
          keyFingerprint: request.keyFingerprint,
        }),
      );
    }

    let value;
    try {
      value = await request.consume({ statusCode, headers: responseHeaders, body });
    } catch (error) {
      body.destroy();
      return fail(error);
    }

    if (request.streaming) {
      // The response is there: from now on only the body signal (caller, stream lifetime)
      // bounds the exchange, not the call deadline.
      link.signal.removeEventListener('abort', unlinkOnAbort);
      link.dispose();
      link = linkSignals(request.bodySignal);
      watch(link);
      const end = (): void => {
        finish();
        request.onExchangeEnd?.();
      };
      if (body.closed) end();
      else body.once('close', end);
    } else {
      // A consumer that left bytes unread: drop the socket rather than reuse it mid-body.
      if (!body.readableEnded) body.destroy();
      finish();
      request.onExchangeEnd?.();
    }
    return value;
  };
}
