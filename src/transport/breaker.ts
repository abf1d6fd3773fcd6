import type { Logger } from 'pino';
import { throwIfAborted, type AbortSignalLike } from '../lib/abort';
import { chain } from '../lib/chain';
import { TransportError } from './errors';
import type { BreakerTransition, CircuitStateName, TransportCounters } from './status';
import { TripRule, type TripRuleOptions } from './trip-rule';
import type { Interceptor } from './types';

const MAX_TRANSITIONS = 50;

/** Answers about the request or the account (rejected, key refused, no balance), not about health. */
const CALLER_FAULT_STATUSES: ReadonlySet<number> = new Set([400, 401, 402, 403, 422]);

/**
 * What a finished call tells the breaker:
 * - `success`: a usable answer;
 * - `failure`: a health failure (overload, outage, slowness);
 * - `answer`: DeepSeek answered, about the request or the account (400, 401, 402, 403, 422);
 *   it proves DeepSeek is reachable but says nothing about its load;
 * - `none`: no verdict at all: the caller gave up, a shutdown cut the call, the local queue
 *   was full, or nothing was sent.
 */
export type BreakerVerdict = 'success' | 'failure' | 'answer' | 'none';

/** The verdict of a call that failed with `error`; `signal` is the caller's. */
export function verdictOf(error: unknown, signal?: AbortSignalLike): BreakerVerdict {
  // A caller who gave up learned nothing about the upstream, whatever the error on the way.
  if (signal?.aborted || !(error instanceof TransportError)) return 'none';
  const { failure } = error;
  switch (failure.kind) {
    case 'status':
      return CALLER_FAULT_STATUSES.has(failure.status) ? 'answer' : 'failure';
    case 'network':
    case 'timeout':
      return 'failure';
    case 'invalid-response':
      // A 2xx the handler could not use: worth a retry (unreadable, or an error object that
      // says overload) is a health failure; a rejection or a refused key inside it is an answer.
      return error.retryable ? 'failure' : 'answer';
    case 'closed': // a shutdown cut the call (or came first): it says nothing about DeepSeek
    case 'circuit-open':
    case 'overloaded':
      return 'none';
  }
}

/**
 * Outcomes that say something about the upstream's health: overload, outage, slowness. An
 * answer about the request or the account does not; nor does anything that sent no request,
 * nor a call cut by shutdown.
 */
export function isHealthFailure(error: unknown): boolean {
  return verdictOf(error) === 'failure';
}

export interface BreakerOptions extends Pick<TripRuleOptions, 'failureRate' | 'windowMs' | 'minCalls'> {
  /** Time the circuit stays open before one probe call is let through. */
  cooldownMs: number;
  logger: Logger;
  /** Clock in ms since epoch (default `Date.now`, which jest's fake timers drive). */
  now?: () => number;
}

/** A call let through: counted in the CLOSED period `epoch`, or the one half-open probe. */
export interface Admission {
  readonly probe: boolean;
  readonly epoch: number;
}

/**
 * The circuit breaker's state machine: CLOSED → OPEN (the trip rule, `trip-rule.ts`: a
 * failure rate over a window, or a run of failures) → HALF_OPEN after the cooldown → CLOSED
 * when the probe is answered, OPEN again when it fails.
 *
 * Written by hand rather than with cockatiel's `CircuitBreakerPolicy`, which (3.2) makes every
 * call that arrives during the half-open probe wait for the probe's outcome outside the
 * concurrency queue (unbounded, for as long as the probe hangs), and closes the circuit when
 * the probe ends with an error it was told not to count (a caller's abort, a shutdown).
 * Here exactly one probe goes through; every other call fails at once while it runs; a probe
 * without a verdict (`none`) gives the next call the probe.
 */
export class Breaker {
  readonly #transitions: BreakerTransition[] = [];
  readonly #options: BreakerOptions;
  readonly #now: () => number;
  #state: CircuitStateName = 'CLOSED';
  /** Changes at every transition: a call admitted in an earlier CLOSED period is not counted. */
  #epoch = 0;
  #openedAt = 0;
  #probing = false;
  readonly #rule: TripRule;

  constructor(options: BreakerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const { failureRate, windowMs, minCalls } = options;
    this.#rule = new TripRule({ failureRate, windowMs, minCalls, now: this.#now });
  }

  /**
   * The state for status reports. OPEN turns into HALF_OPEN on the next call after the
   * cooldown; this reports HALF_OPEN from the end of the cooldown already, so a readiness
   * check that keys off OPEN cannot starve the breaker of its probe.
   */
  get state(): CircuitStateName {
    return this.#state === 'OPEN' && this.retryInMs() === 0 ? 'HALF_OPEN' : this.#state;
  }

  /** A half-open probe call is running: every other call fails fast meanwhile. */
  get probeInFlight(): boolean {
    return this.#probing;
  }

  get transitions(): BreakerTransition[] {
    return [...this.#transitions];
  }

  /** Time left until a probe may go through (0 once the cooldown is over, or when not OPEN). */
  retryInMs(now = this.#now()): number {
    return this.#state === 'OPEN' ? Math.max(0, this.#openedAt + this.#options.cooldownMs - now) : 0;
  }

  /**
   * Lets a call through, or answers undefined when it must fail fast: OPEN within the
   * cooldown, or a half-open probe already in flight. The first call after the cooldown
   * becomes the probe.
   */
  admit(): Admission | undefined {
    if (this.#state === 'CLOSED') return { probe: false, epoch: this.#epoch };
    if (this.#probing || this.retryInMs() > 0) return undefined;
    if (this.#state === 'OPEN') this.#transition('HALF_OPEN');
    this.#probing = true;
    return { probe: true, epoch: this.#epoch };
  }

  /** Records how an admitted call ended. */
  settle(admission: Admission, verdict: BreakerVerdict): void {
    if (admission.probe) {
      this.#probing = false;
      // Any answer from DeepSeek (even a 400) proves it is back; a failure reopens; no
      // verdict (the caller left, shutdown, a full queue) leaves the probe to the next call.
      if (verdict === 'success' || verdict === 'answer') this.#transition('CLOSED');
      else if (verdict === 'failure') this.#open();
      return;
    }
    // Admitted before the circuit last changed (in flight when it opened): no longer relevant.
    if (admission.epoch !== this.#epoch || this.#state !== 'CLOSED') return;
    // An answer about the request (a 400, a refused key) is neither: a flood of bad requests
    // must not dilute the failure rate of an outage, nor add to it.
    if (verdict === 'success') this.#rule.success();
    else if (verdict === 'failure' && this.#rule.failure()) this.#open();
  }

  /** The error a call gets when it is not let through. */
  rejection(): TransportError {
    return new TransportError({ kind: 'circuit-open', retryInMs: this.retryInMs(), probeInFlight: this.#probing });
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#transition('OPEN');
  }

  #transition(to: CircuitStateName): void {
    this.#state = to;
    this.#epoch += 1;
    // Closed after an outage: the failures that opened it must not open it again.
    if (to === 'CLOSED') this.#rule.reset();
    this.#transitions.push({ to, at: new Date(this.#now()).toISOString() });
    if (this.#transitions.length > MAX_TRANSITIONS) this.#transitions.shift();
    this.#options.logger.warn({ circuit: to }, `upstream circuit ${to}`);
  }
}

/**
 * Counts whole calls (outside the retry policy): a call that succeeds on its third attempt
 * is one success; a stream counts once its headers are in. A call that is not let through
 * fails at once with a `circuit-open` error and never reaches the network (nor the
 * concurrency queue).
 */
export function breakerInterceptor(breaker: Breaker, counters: TransportCounters): Interceptor {
  return (next) => (request, handler) => {
    let admission: Admission | undefined;
    return chain(
      () => {
        // A caller who already left takes no probe and is no short-circuited call.
        throwIfAborted(request.signal);
        admission = breaker.admit();
        if (!admission) {
          counters.shortCircuited += 1;
          throw breaker.rejection();
        }
        return next(request, handler);
      },
      (value) => {
        breaker.settle(admission!, 'success');
        return value;
      },
      (error) => {
        if (admission) breaker.settle(admission, verdictOf(error, request.signal));
        throw error;
      },
    );
  };
}
