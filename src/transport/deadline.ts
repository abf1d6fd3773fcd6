import { linkSignals } from './abort';
import type { Classifier, Interceptor } from './types';

/** The abort reason of a deadline: internal, turned into UPSTREAM_TIMEOUT by the wrapper. */
export class DeadlineExceeded extends Error {
  constructor(readonly timeoutMs: number) {
    super(`deadline of ${timeoutMs} ms exceeded`);
    this.name = 'DeadlineExceeded';
  }
}

/**
 * A fixed end time with a signal that aborts then (`AbortSignal.timeout`-style, but its
 * timer is cleared by `dispose()` so finished calls leave no timers behind).
 */
export class Deadline {
  readonly at: number;
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(readonly timeoutMs: number) {
    this.at = Date.now() + timeoutMs;
    this.signal = this.#controller.signal;
    this.#timer = setTimeout(() => this.#controller.abort(new DeadlineExceeded(timeoutMs)), timeoutMs);
    // Never keep the process alive just for a deadline.
    this.#timer.unref();
  }

  get expired(): boolean {
    return this.signal.aborted;
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.at - now);
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * One deadline per call, created once and shared by every attempt and backoff wait, so
 * `timeoutMs` bounds the whole call however many retries it makes. It bounds total time,
 * not idle time: blank lines or keep-alive comments do not extend it. Past it the call
 * fails with UPSTREAM_TIMEOUT; a caller's abort is rethrown as the caller's reason.
 */
export function deadlineInterceptor(options: { timeoutMs: number; classify: Classifier }): Interceptor {
  return (next) => async (request) => {
    const deadline = new Deadline(options.timeoutMs);
    // Streams: the deadline bounds getting the response; `bodySignal` bounds the rest.
    const linked = linkSignals(request.signal, deadline.signal);
    const callerSignal = request.callerSignal ?? request.signal;
    try {
      return await next({ ...request, signal: linked.signal, callerSignal, deadline });
    } catch (error) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      if (deadline.expired) {
        throw options.classify({
          kind: 'timeout',
          phase: 'call',
          timeoutMs: options.timeoutMs,
          attempts: request.stats.attempts,
        });
      }
      throw error;
    } finally {
      linked.dispose();
      deadline.dispose();
    }
  };
}
