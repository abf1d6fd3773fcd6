import type { Logger } from 'pino';
import { UpstreamError } from '../errors';
import { sleep } from '../lib/abort';
import type { RetryBudget } from './retry-budget';
import type { TransportCounters } from './status';
import type { Interceptor, TransportRequest } from './types';

export interface RetryOptions {
  /** Retries after the first attempt (2 → at most 3 attempts). */
  maxRetries: number;
  baseMs: number;
  maxMs: number;
  budget: RetryBudget;
  counters: TransportCounters;
  logger: Logger;
  /** Source of jitter in [0, 1); injectable for tests. */
  random?: () => number;
}

/** Exponential backoff with full jitter: random(0, min(maxMs, baseMs × 2^retryIndex)). */
export function backoffDelay(retryIndex: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** retryIndex));
}

/** Puts the call's attempt count on an upstream error; other errors pass unchanged. */
export function withAttempts(error: unknown, attempts: number): unknown {
  return error instanceof UpstreamError ? error.with({ attempts }) : error;
}

/**
 * Retries an attempt that failed with a retryable `UpstreamError` (429, 500, 502, 503,
 * 504, resets, refused connections, connect/header timeouts: the classifier decides).
 * Never retries a rejection, an auth/balance failure, a caller abort or the deadline.
 * The wait is the jittered backoff or `Retry-After`, whichever is longer; when that wait
 * would end past the call's deadline the call fails now with the last error. Each retry
 * must also fit the retry budget. undici itself retries no POST; this is the opt-in.
 */
export function retryInterceptor(options: RetryOptions): Interceptor {
  const random = options.random ?? Math.random;

  function delayBeforeRetry(error: unknown, attempt: number, request: TransportRequest<unknown>): number | undefined {
    if (request.signal?.aborted) return undefined;
    if (!(error instanceof UpstreamError) || !error.retryable) return undefined;
    if (attempt > options.maxRetries) return undefined;
    const delay = Math.max(backoffDelay(attempt - 1, options.baseMs, options.maxMs, random), error.details.retryAfterMs ?? 0);
    if (request.deadline && Date.now() + delay >= request.deadline.at) return undefined;
    if (!options.budget.tryRetry()) {
      options.counters.retryBudgetExhausted += 1;
      return undefined;
    }
    return delay;
  }

  return (next) => async (request) => {
    options.budget.recordCall();
    // What made the previous attempt fail, for the next attempt's span.
    let retryReason: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await next({ ...request, attempt, retryReason });
      } catch (error) {
        const delay = delayBeforeRetry(error, attempt, request);
        if (delay === undefined) throw withAttempts(error, request.stats.attempts);
        options.counters.retries += 1;
        retryReason = (error as UpstreamError).code;
        options.logger.debug(
          { path: request.path, attempt, delayMs: delay, code: (error as UpstreamError).code },
          'retrying upstream call',
        );
        // An abort during the wait ends the call; the deadline wrapper names the cause.
        await sleep(delay, request.signal);
      }
    }
  };
}
