import type { Readable } from 'node:stream';
import { errors } from 'undici';
import { abortReason, type AbortSignalLike } from '../lib/abort';
import type { UpstreamHandler, UpstreamRequest, UpstreamResponse } from './types';

/**
 * A body its reader stopped reading: a plain `destroy()` (undici names it
 * `RequestAbortedError`) or leaving a `for await` loop early (Node's `AbortError`,
 * `ABORT_ERR`). That is the reader's choice (it had what it wanted), not a failure.
 */
function closedByReader(error: Error): boolean {
  return error instanceof errors.RequestAbortedError || (error as { code?: unknown }).code === 'ABORT_ERR';
}

/**
 * Why a stream's body ended: the abort that cut it (the caller, the stream lifetime,
 * shutdown), the error it failed or was destroyed with (a socket error, a problem its reader
 * reported), or nothing when it was read to the end or its reader closed it.
 */
function endReason(body: Readable, signal: AbortSignalLike | undefined): Error | undefined {
  if (signal?.aborted) return abortReason(signal);
  const error = body.errored;
  return error && !closedByReader(error) ? error : undefined;
}

export interface DeliverOptions {
  /** The exchange's abort signal, to name what cut a stream. */
  signal?: AbortSignalLike;
  /** The exchange's own bookkeeping, run first when it is over. */
  onEnd?: () => void;
}

/**
 * Hands a 2xx response to `handler` and ends the exchange by the handler contract
 * (`UpstreamHandler`): when the handler fails, the body is destroyed and the error
 * rethrown; after a non-stream handler, an unread rest of the body is dropped (the socket
 * is not reused mid-body) and the exchange is over at once; a stream's exchange is over
 * when its body closes.
 */
export async function deliver<T>(
  request: Pick<UpstreamRequest, 'stream'>,
  handler: UpstreamHandler<T>,
  response: UpstreamResponse,
  options: DeliverOptions = {},
): Promise<T> {
  const { body } = response;
  let value: T;
  try {
    value = await handler.onResponse(response);
  } catch (error) {
    body.destroy();
    throw error;
  }
  const end = (error: Error | undefined): void => {
    options.onEnd?.();
    handler.onResponseEnd?.(error);
  };
  if (!request.stream) {
    if (!body.readableEnded) body.destroy();
    end(undefined);
  } else if (body.closed) {
    end(endReason(body, options.signal));
  } else {
    body.once('close', () => end(endReason(body, options.signal)));
  }
  return value;
}
