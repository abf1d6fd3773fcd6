import { Readable } from 'node:stream';
import { abortReason, abortable, onAbort } from '../../src/lib/abort';
import { TransportError } from '../../src/transport/errors';
import { deliver } from '../../src/transport/handler';
import type { Dispatch, UpstreamHandler, UpstreamRequest, UpstreamResponse } from '../../src/transport/types';

/**
 * Fakes for driving one interceptor at a time: a request, responses, and a `next` that
 * stands in for the exchange. Time is never real here: tests use jest's fake timers, which
 * must leave `nextTick` and `setImmediate` alone (streams need them):
 * `jest.useFakeTimers({ doNotFake: FAKE_TIMERS_KEEP })`.
 */
export const FAKE_TIMERS_KEEP: Array<'nextTick' | 'setImmediate' | 'queueMicrotask'> = ['nextTick', 'setImmediate', 'queueMicrotask'];

/** A frozen request, so a policy that tried to change it would throw. */
export function upstreamRequest(overrides: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return Object.freeze({
    method: 'POST' as const,
    path: '/chat/completions',
    headers: Object.freeze({ 'content-type': 'application/json' }),
    body: '{}',
    stream: false,
    ...overrides,
  });
}

/** A body the test controls: `push` chunks, `push(null)` to end it. */
export function openBody(): Readable {
  return new Readable({ read() {} });
}

/** A 2xx response; by default a complete JSON body. */
export function okResponse(body: Readable = Readable.from([Buffer.from('{"ok":true}')]), headers: Record<string, string> = {}): UpstreamResponse {
  return { status: 200, headers, body };
}

/** A `status` failure as the exchange makes it. */
export function statusError(status: number, options: { retryable?: boolean; retryAfterMs?: number; traceId?: string } = {}): TransportError {
  return new TransportError(
    { kind: 'status', status, body: '', retryAfterMs: options.retryAfterMs },
    { retryable: options.retryable ?? [429, 500, 502, 503, 504].includes(status), traceId: options.traceId },
  );
}

/** What one exchange of the fake does: answer, fail, hang until aborted, or decide per request. */
export type Step = UpstreamResponse | Error | 'hang' | ((request: UpstreamRequest) => Promise<UpstreamResponse> | UpstreamResponse);

export interface FakeNext {
  dispatch: Dispatch;
  /** Every request the fake was given, in order. */
  requests: UpstreamRequest[];
}

/**
 * A `next` standing in for the exchange: each dispatch takes the next step (the last one
 * repeats). Like the exchange it calls `onExchange`, names an abort by its reason, destroys
 * a body whose signal aborts, and hands responses over by the real handler contract
 * (`deliver`).
 */
export function fakeNext(...steps: Step[]): FakeNext {
  const requests: UpstreamRequest[] = [];
  const dispatch: Dispatch = async <T>(request: UpstreamRequest, handler: UpstreamHandler<T>): Promise<T> => {
    requests.push(request);
    handler.onExchange?.();
    const step = steps[Math.min(requests.length - 1, steps.length - 1)];
    const outcome =
      step === 'hang'
        ? new Promise<UpstreamResponse>(() => undefined)
        : step instanceof Error
          ? Promise.reject(step)
          : Promise.resolve(typeof step === 'function' ? step(request) : step);
    const response = await abortable(outcome, request.signal);
    // As in the exchange: a destroyed body emits 'error', and nobody may be listening.
    response.body.on('error', () => undefined);
    const unwatch = onAbort(request.signal, (reason) => response.body.destroy(reason));
    try {
      return await deliver(request, handler, response, { signal: request.signal, onEnd: unwatch });
    } catch (error) {
      unwatch();
      throw request.signal?.aborted ? abortReason(request.signal) : error;
    }
  };
  return { dispatch, requests };
}

/** A handler that reads the whole body as text (a non-stream call) and records its end. */
export function textHandler(): UpstreamHandler<string> & { ends: Array<Error | undefined> } {
  const ends: Array<Error | undefined> = [];
  return {
    ends,
    async onResponse(response) {
      let text = '';
      for await (const chunk of response.body) text += String(chunk);
      return text;
    },
    onResponseEnd(error) {
      ends.push(error);
    },
  };
}

/** A handler that hands the response back unread (a stream) and records its end. */
export function streamHandler(): UpstreamHandler<UpstreamResponse> & { ends: Array<Error | undefined> } {
  const ends: Array<Error | undefined> = [];
  return {
    ends,
    onResponse: async (response) => response,
    onResponseEnd(error) {
      ends.push(error);
    },
  };
}

/** Lets streams and promise jobs run (close events come a tick or two after `destroy`). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}
