import type { Logger } from 'pino';
import { sleep } from '../lib/abort';
import { chain } from '../lib/chain';
import { TransportError } from './errors';
import type { RetryBudget } from './retry-budget';
import type { TransportCounters } from './status';
import { withRequest, type ErrorType, type Interceptor, type UpstreamHandler, type UpstreamRequest } from './types';

export interface RetryOptions {
  /** Retries after the first attempt (2 → at most 3 attempts). */
  maxRetries: number;
  baseMs: number;
  maxMs: number;
  budget: RetryBudget;
  counters: TransportCounters;
  logger: Logger;
  /** Names the failure that caused a retry (span attribute and log line). */
  errorType: ErrorType;
  /** Source of jitter in [0, 1); injectable for tests. */
  random?: () => number;
}

/** Exponential backoff with full jitter: random(0, min(maxMs, baseMs × 2^retryIndex)). */
export function backoffDelay(retryIndex: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** retryIndex));
}

/**
 * Retries an attempt that failed with a `retryable` TransportError: a status on the allow-list
 * (429, 500, 502, 503, 504 unless the provider says otherwise), a reset, refused connection or
 * connect/header timeout, or a 2xx its handler found unusable and worth another try. Never
 * retries anything else: a rejection, a refused key, a full queue, a caller's abort, the
 * deadline. The wait is the jittered backoff or `Retry-After`, whichever is longer; when that
 * wait would end past the call's deadline the call fails now with the last error. Each retry
 * must also fit the retry budget. undici itself retries no POST; this is the opt-in.
 */
export function retryInterceptor(options: RetryOptions): Interceptor {
  const random = options.random ?? Math.random;

  function delayBeforeRetry(error: unknown, attempt: number, request: UpstreamRequest): number | undefined {
    if (request.signal?.aborted) return undefined;
    if (!(error instanceof TransportError) || !error.retryable) return undefined;
    if (attempt > options.maxRetries) return undefined;
    const delay = Math.max(backoffDelay(attempt - 1, options.baseMs, options.maxMs, random), error.retryAfterMs ?? 0);
    if (request.deadline && Date.now() + delay >= request.deadline.at) return undefined;
    if (!options.budget.tryRetry()) {
      options.counters.retryBudgetExhausted += 1;
      return undefined;
    }
    return delay;
  }

  return (next) =>
    <T>(request: UpstreamRequest, handler: UpstreamHandler<T>): Promise<T> => {
      options.budget.recordCall();
      // What made the previous attempt fail, for the next attempt's span.
      let reason: string | undefined;
      const attemptFrom = (attempt: number): Promise<T> =>
        chain(
          () => next(withRequest(request, { retry: { attempt, reason } }), handler),
          undefined,
          (error) => {
            const delay = delayBeforeRetry(error, attempt, request);
            if (delay === undefined) throw error;
            options.counters.retries += 1;
            reason = options.errorType(error);
            options.logger.debug({ path: request.path, attempt, delayMs: delay, code: reason }, 'retrying upstream call');
            // An abort during the wait ends the call; the deadline policy names the cause.
            return sleep(delay, request.signal).then(() => attemptFrom(attempt + 1));
          },
        );
      return chain(() => attemptFrom(1));
    };
}
