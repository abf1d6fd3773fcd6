import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { abortReason } from '../lib/abort';
import { chain } from '../lib/chain';
import { readBody } from '../lib/read-body';
import { TransportError } from './errors';
import { deliver } from './handler';
import { parseRetryAfter } from './retry-after';
import { headerValue, type Dispatch, type ResponseHeaders } from './types';

const ERROR_BODY_LIMIT = 64 * 1024;

export interface ExchangeOptions {
  dispatcher: Dispatcher;
  /** Path prefix from the base URL (`/v1` for `…/v1`). */
  basePath: string;
  /** Response header carrying the upstream's trace id (DeepSeek: `x-ds-trace-id`). */
  traceIdHeader?: string;
  /** Statuses worth another attempt. */
  retryableStatuses: ReadonlySet<number>;
  /** Removes secrets from error bodies before anyone reads them. */
  scrub: (text: string) => string;
  /**
   * The transport is closed: an exchange that starts anyway (after a backoff wait or a queue
   * wait that outlived the shutdown) fails with `closed`, not with the pool's own error, which
   * would read as a network failure of the upstream.
   */
  closed?: () => boolean;
}

/** Reads at most `limit` bytes of a body as text, then drops the rest. */
function readLimited(body: Readable, limit: number): Promise<string> {
  return readBody(body, limit, { cut: true }).then((bytes) => bytes.toString('utf8'));
}

/**
 * The innermost dispatch: one HTTP exchange on the undici pool. It tells the handler an
 * exchange starts, sends the request, turns a status outside 2xx or a socket error into a
 * `TransportError`, and hands a 2xx response to the handler (`deliver`). It stays bound to
 * the request's signal until the exchange is over, a stream's body included. Aborts
 * (caller, deadline, stream lifetime, shutdown) surface as the signal's reason, which the
 * policy that owns the signal has already named.
 */
export function createExchange(options: ExchangeOptions): Dispatch {
  return (request, handler) => {
    if (options.closed?.()) return Promise.reject(new TransportError({ kind: 'closed' }));
    // No controller of its own: the request's signal is the call's (the deadline's), which
    // the caller's abort, the deadlines and the transport's shutdown all abort.
    const { signal } = request;
    const keyFingerprint = request.key?.fingerprint;
    const fail = (error: unknown): never => {
      if (signal?.aborted) throw abortReason(signal);
      throw error instanceof TransportError ? error : TransportError.network(error, keyFingerprint);
    };
    try {
      handler.onExchange?.();
    } catch (error) {
      return Promise.reject(error);
    }
    return chain(
      () =>
        options.dispatcher.request({
          method: request.method,
          path: `${options.basePath}${request.path}`,
          headers: request.headers,
          body: request.body,
          signal,
        }),
      (response) => {
        const { body, statusCode: status } = response;
        const headers = response.headers as ResponseHeaders;
        // Destroying an unread body emits 'error'; nobody may be listening by then.
        body.on('error', () => undefined);
        if (status >= 200 && status < 300) return chain(() => deliver(request, handler, { status, headers, body }, { signal }), undefined, fail);
        // A status without a readable body is still a status.
        return readLimited(body, ERROR_BODY_LIMIT)
          .then((text) => options.scrub(text))
          .then(statusFailure, () => statusFailure(''));

        function statusFailure(text: string): never {
          body.destroy();
          return fail(
            new TransportError(
              { kind: 'status', status, body: text, retryAfterMs: parseRetryAfter(headers['retry-after']) },
              {
                retryable: options.retryableStatuses.has(status),
                traceId: options.traceIdHeader ? headerValue(headers, options.traceIdHeader) : undefined,
                keyFingerprint,
              },
            ),
          );
        }
      },
      fail,
    );
  };
}
