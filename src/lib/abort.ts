/**
 * Abort signals, deadlines and timeouts: the one module every layer uses for "stop waiting".
 * Signals are combined by hand (not `AbortSignal.any`) so every listener added to a
 * long-lived caller signal is removed again when the work ends. Timers go through the
 * global `setTimeout` and `Date.now`, so jest's fake timers drive them in tests.
 */

// ---------------------------------------------------------------------------- errors

interface ErrorLike {
  name: string;
  message: string;
}

function isErrorLike(value: unknown): value is ErrorLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<ErrorLike>).name === 'string' &&
    typeof (value as Partial<ErrorLike>).message === 'string'
  );
}

/**
 * Something `instanceof Error`. A DOMException (an AbortSignal's default reason) or an
 * error from another realm may fail that test (DataLoader relies on it): those are
 * wrapped, keeping their name and message and the original as `cause`.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (isErrorLike(value)) {
    const error = new Error(value.message, { cause: value });
    error.name = value.name;
    return error;
  }
  return new Error(String(value), { cause: value });
}

/** An `AbortError`, as fetch and undici name theirs. */
export function abortError(message: string): Error {
  const error = new Error(message);
  error.name = 'AbortError';
  return error;
}

/** Why `signal` aborted, as an Error: its reason, or a plain AbortError when it gave none. */
export function abortReason(signal: AbortSignalLike | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason === undefined ? abortError('This operation was aborted') : toError(reason);
}

/** Throws the signal's reason when it has aborted. */
export function throwIfAborted(signal: AbortSignalLike | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

// ---------------------------------------------------------------------------- signals

/**
 * What the gateway reads of an abort signal, which is also all that undici's `request`
 * reads of one: an `AbortSignal` is one, and so is a `LightAbortController`.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An abort controller and its signal in one small object, for the signals made on every
 * request and upstream call: a client's disconnect, a flight, a call's deadline, a stream.
 * Node's `AbortSignal` is an `EventTarget`: making a controller and its signal, adding a
 * listener and removing it took 3.7 µs and about 0.6 KB of heap, against 0.05 µs here, and
 * a cache miss made three of them.
 *
 * It behaves as `AbortController` does where the gateway and undici rely on it:
 * - `abort()` sets `aborted` and `reason` (an `AbortError` DOMException when no reason is
 *   given) before any listener runs, and a second `abort()` does nothing;
 * - each listener runs once, in the order added; the same listener is added once;
 * - a listener removed before its turn is not called;
 * - a listener added after the abort never runs;
 * - a listener that throws does not stop the others: its error is thrown on the next tick,
 *   as `EventTarget` reports it.
 */
export class LightAbortController implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  /** During the abort, a removed listener's slot is cleared rather than spliced out. */
  #listeners: Array<(() => void) | undefined> | undefined = undefined;

  /** The signal to hand out: this object, seen without `abort`. */
  get signal(): AbortSignalLike {
    return this;
  }

  addEventListener(type: 'abort', listener: () => void): void {
    if (type !== 'abort' || this.aborted) return;
    const listeners = (this.#listeners ??= []);
    if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    if (type !== 'abort' || !listeners) return;
    const index = listeners.indexOf(listener);
    if (index === -1) return;
    if (this.aborted) listeners[index] = undefined;
    else listeners.splice(index, 1);
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    const listeners = this.#listeners;
    if (!listeners) return;
    for (let index = 0; index < listeners.length; index += 1) {
      const listener = listeners[index];
      if (!listener) continue;
      listeners[index] = undefined;
      try {
        listener.call(this);
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    }
    this.#listeners = undefined;
  }
}

/** A signal that aborts when any source aborts, with that source's reason. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Removes the listeners from the sources; the linked signal keeps its state. */
  dispose(): void;
}

export function linkSignals(...sources: Array<AbortSignalLike | undefined>): LinkedSignal {
  const controller = new AbortController();
  const cleanups: Array<() => void> = [];
  const dispose = (): void => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  for (const source of sources) {
    if (!source) continue;
    if (source.aborted) {
      controller.abort(source.reason);
      break;
    }
    const onAbort = (): void => {
      controller.abort(source.reason);
      dispose();
    };
    source.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => source.removeEventListener('abort', onAbort));
  }
  if (controller.signal.aborted) dispose();
  return { signal: controller.signal, dispose };
}

/**
 * Calls `onAbort` once when `signal` aborts (at once if it already has). Returns the
 * function that removes the listener; call it when the work is over.
 */
export function onAbort(signal: AbortSignalLike | undefined, listener: (reason: Error) => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    listener(abortReason(signal));
    return () => undefined;
  }
  const handler = (): void => listener(abortReason(signal));
  signal.addEventListener('abort', handler, { once: true });
  return () => signal.removeEventListener('abort', handler);
}

/** Waits `ms`, rejecting with the abort reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignalLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const stop = onAbort(signal, (reason) => {
      clearTimeout(timer);
      reject(reason);
    });
    const timer = setTimeout(() => {
      stop();
      resolve();
    }, ms);
  });
}

/**
 * Settles with `promise`, or rejects as soon as `signal` aborts. The promise itself keeps
 * running; its own rejection is swallowed so it never becomes unhandled.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignalLike | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      promise.catch(() => undefined);
      reject(abortReason(signal));
      return;
    }
    const stop = onAbort(signal, reject);
    promise.then(
      (value) => {
        stop();
        resolve(value);
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
  });
}

// ---------------------------------------------------------------------------- deadlines

/** The abort reason of a `Deadline`: internal, named by whoever owns the deadline. */
export class DeadlineExceeded extends Error {
  constructor(readonly timeoutMs: number) {
    super(`deadline of ${timeoutMs} ms exceeded`);
    this.name = 'DeadlineExceeded';
  }
}

/**
 * A fixed end time with a signal that aborts then (`AbortSignal.timeout`-style, but its
 * timer is cleared by `dispose()` so finished work leaves no timers behind, and it never
 * keeps the process alive). The abort reason is a `DeadlineExceeded` unless the owner names
 * its own, so work cut by the deadline fails with an error that already says why.
 */
export class Deadline {
  readonly at: number;
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly timeoutMs: number,
    reason: () => Error = () => new DeadlineExceeded(timeoutMs),
  ) {
    this.at = Date.now() + timeoutMs;
    this.signal = this.#controller.signal;
    this.#timer = setTimeout(() => this.#controller.abort(reason()), timeoutMs);
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

/** What `withTimeout` resolves with when the work did not finish in time. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * Settles with `work`, or with `TIMED_OUT` after `ms`. The work itself keeps running (a
 * store command cannot be taken back); its late rejection is swallowed so it never becomes
 * an unhandled rejection. The timer is always cleared, so no handle outlives the call.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(resolve, ms, TIMED_OUT);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
