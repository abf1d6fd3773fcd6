import { abortReason, LightAbortController, onAbort } from '../lib/abort';
import { chain } from '../lib/chain';
import { TransportError } from './errors';
import { withRequest, wrapHandler, type Interceptor } from './types';

export interface DeadlineOptions {
  /** Bounds getting the answer: every attempt, backoff and queue wait, and a non-stream body. */
  timeoutMs: number;
  /** Bounds a stream from the start of the call to the end of its body. */
  streamMaxMs: number;
  /**
   * The controllers of the calls in flight, each kept until its call ends (a stream's body
   * included), so the transport's `close()` can abort them; the exchange and every policy
   * in between see that abort in `request.signal`.
   */
  calls?: Set<LightAbortController>;
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
  const timeout = (phase: 'call' | 'stream', timeoutMs: number) => new TransportError({ kind: 'timeout', phase, timeoutMs });

  return (next) => (request, handler) => {
    // One controller per call, aborted by whichever comes first: the caller's signal, the
    // call deadline or the stream lifetime, each with its own reason (no controller per
    // deadline linked into a third: this runs on every upstream call).
    const controller = new LightAbortController();
    options.calls?.add(controller);
    const at = Date.now() + options.timeoutMs;
    let callTimer: NodeJS.Timeout | undefined = setTimeout(() => controller.abort(timeout('call', options.timeoutMs)), options.timeoutMs);
    callTimer.unref();
    let lifetimeTimer: NodeJS.Timeout | undefined;
    if (request.stream) {
      lifetimeTimer = setTimeout(() => controller.abort(timeout('stream', options.streamMaxMs)), options.streamMaxMs);
      lifetimeTimer.unref();
    }
    const stopCallTimer = (): void => {
      clearTimeout(callTimer);
      callTimer = undefined;
    };
    const unwatch = onAbort(request.signal, (reason) => controller.abort(reason));
    const end = (): void => {
      options.calls?.delete(controller);
      unwatch();
      stopCallTimer();
      clearTimeout(lifetimeTimer);
    };
    return chain(
      () =>
        next(
          withRequest(request, { signal: controller.signal, deadline: { at } }),
          wrapHandler(handler, {
            onResponse(response) {
              // The call deadline was for getting the stream; its body has the lifetime.
              if (request.stream) stopCallTimer();
              return handler.onResponse(response);
            },
            onResponseEnd(error) {
              end();
              handler.onResponseEnd?.(error);
            },
          }),
        ),
      undefined,
      (error) => {
        end();
        if (request.signal?.aborted) throw abortReason(request.signal);
        // A deadline that fired is the reason, already named (`timeout`, phase call or stream).
        if (controller.signal.aborted) throw abortReason(controller.signal);
        throw error;
      },
    );
  };
}
