import { Deadline, linkSignals } from '../lib/abort';
import type { Classifier, Interceptor } from './types';

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
