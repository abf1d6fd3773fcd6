import { Deadline, abortReason, linkSignals } from '../lib/abort';
import { TransportError } from './errors';
import type { Interceptor } from './types';

export interface DeadlineOptions {
  /** Bounds getting the answer: every attempt, backoff and queue wait, and a non-stream body. */
  timeoutMs: number;
  /** Bounds a stream from the start of the call to the end of its body. */
  streamMaxMs: number;
}

/**
 * The one deadline of the transport. Created once per call and shared by every attempt and
 * backoff wait (inner policies see it as `request.deadline` and in `request.signal`), so
 * `timeoutMs` bounds the whole call however many retries it makes. It bounds total time,
 * not idle time: blank lines or keep-alive comments do not extend it. A non-stream call is
 * bounded until its body is read; a stream until its headers are in, after which its
 * lifetime (`streamMaxMs`, counted from the call's start) bounds the body. The abort
 * reasons are already named (`timeout`, phase `call` or `stream`), so a stream cut
 * mid-body fails with the right error; a caller's abort is rethrown as the caller's reason.
 */
export function deadlineInterceptor(options: DeadlineOptions): Interceptor {
  const timeout = (phase: 'call' | 'stream', timeoutMs: number) => () =>
    new TransportError({ kind: 'timeout', phase, timeoutMs });

  return (next) => async (request, handler) => {
    const call = new Deadline(options.timeoutMs, timeout('call', options.timeoutMs));
    const lifetime = request.stream ? new Deadline(options.streamMaxMs, timeout('stream', options.streamMaxMs)) : undefined;
    const bound = linkSignals(request.signal, call.signal, lifetime?.signal);
    const end = (): void => {
      bound.dispose();
      call.dispose();
      lifetime?.dispose();
    };
    try {
      return await next(
        { ...request, signal: bound.signal, deadline: { at: call.at } },
        {
          ...handler,
          onResponse(response) {
            // The call deadline was for getting the stream; its body has the lifetime.
            if (request.stream) call.dispose();
            return handler.onResponse(response);
          },
          onResponseEnd(error) {
            end();
            handler.onResponseEnd?.(error);
          },
        },
      );
    } catch (error) {
      end();
      if (request.signal?.aborted) throw abortReason(request.signal);
      if (call.expired) throw abortReason(call.signal);
      if (lifetime?.expired) throw abortReason(lifetime.signal);
      throw error;
    }
  };
}
