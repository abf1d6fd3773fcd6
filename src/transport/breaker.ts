import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  IsolatedCircuitError,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { Logger } from 'pino';
import { abortable } from '../lib/abort';
import { TransportError } from './errors';
import type { BreakerTransition, CircuitStateName, TransportCounters } from './status';
import type { Interceptor } from './types';

const MAX_TRANSITIONS = 50;

/** Answers about the request or the account (rejected, key refused, no balance), not about health. */
const CALLER_FAULT_STATUSES: ReadonlySet<number> = new Set([400, 401, 402, 403, 422]);

/**
 * Outcomes that say something about the upstream's health: overload, outage, slowness. An
 * answer about the request or the account does not; nor does anything that sent no request.
 */
export function isHealthFailure(error: unknown): boolean {
  if (!(error instanceof TransportError)) return false;
  const { failure } = error;
  switch (failure.kind) {
    case 'status':
      return !CALLER_FAULT_STATUSES.has(failure.status);
    case 'network':
    case 'timeout':
    case 'closed':
      // No answer came (a shutdown cut the call; counted as an outage, as it always was).
      return true;
    case 'invalid-response':
      // A 2xx the handler could not use: worth a retry (unreadable, or an error object that
      // says overload) is a health failure; a rejection or a refused key inside it is not.
      return error.retryable;
    case 'circuit-open':
    case 'overloaded':
    case 'no-key':
      return false;
  }
}

/** No answer from the upstream at all: the caller gave up, or the local queue was full. */
function gotNoAnswer(error: unknown): boolean {
  return !(error instanceof TransportError) || error.kind === 'overloaded';
}

export interface BreakerOptions {
  /** Consecutive failed calls (after their retries) that open the circuit. */
  threshold: number;
  /** Time the circuit stays open before one probe call is let through. */
  cooldownMs: number;
  logger: Logger;
}

/**
 * The circuit breaker: cockatiel's `CircuitBreakerPolicy` with a `ConsecutiveBreaker`
 * does the state machine (CLOSED → OPEN → HALF_OPEN with a single probe); this class
 * decides what counts as a failure and records the transitions.
 */
export class Breaker {
  readonly policy: CircuitBreakerPolicy;
  readonly #transitions: BreakerTransition[] = [];
  readonly #cooldownMs: number;
  #openedAt = 0;

  constructor(options: BreakerOptions) {
    this.#cooldownMs = options.cooldownMs;
    // Health failures count. In HALF_OPEN a probe that got no answer at all (the caller
    // aborted, the local queue was full) also counts: only an answer from DeepSeek (even
    // a 400) proves it is back. Rejections, auth and balance errors never count.
    const counts = (error: Error): boolean =>
      isHealthFailure(error) || (this.policy.state === CircuitState.HalfOpen && gotNoAnswer(error));
    this.policy = circuitBreaker(handleWhen(counts), {
      halfOpenAfter: options.cooldownMs,
      breaker: new ConsecutiveBreaker(options.threshold),
    });
    this.policy.onBreak(() => {
      this.#openedAt = Date.now();
    });
    this.policy.onStateChange((state) => {
      const to = toName(state);
      this.#transitions.push({ to, at: new Date().toISOString() });
      if (this.#transitions.length > MAX_TRANSITIONS) this.#transitions.shift();
      options.logger.warn({ circuit: to }, `upstream circuit ${to}`);
    });
  }

  /**
   * The state for status reports. cockatiel moves OPEN → HALF_OPEN lazily, on the next
   * call; once the cooldown is over this reports HALF_OPEN already, so a readiness check
   * that keys off OPEN cannot starve the breaker of its probe.
   */
  get state(): CircuitStateName {
    const name = toName(this.policy.state);
    if (name === 'OPEN' && this.retryInMs() === 0) return 'HALF_OPEN';
    return name;
  }

  get transitions(): BreakerTransition[] {
    return [...this.#transitions];
  }

  retryInMs(now = Date.now()): number {
    return Math.max(0, this.#openedAt + this.#cooldownMs - now);
  }
}

function toName(state: CircuitState): CircuitStateName {
  switch (state) {
    case CircuitState.Closed:
      return 'CLOSED';
    case CircuitState.HalfOpen:
      return 'HALF_OPEN';
    case CircuitState.Open:
    case CircuitState.Isolated:
      return 'OPEN';
  }
}

/**
 * Counts whole calls (outside the retry policy): a call that succeeds on its third attempt
 * is one success; a stream counts once its headers are in. While open, calls fail at once
 * with a `circuit-open` error and never reach the network.
 */
export function breakerInterceptor(breaker: Breaker, counters: TransportCounters): Interceptor {
  return (next) => async (request, handler) => {
    try {
      // cockatiel makes calls that arrive during a HALF_OPEN probe wait for its outcome;
      // `abortable` lets such a waiter leave as soon as its caller gives up.
      return await abortable(
        breaker.policy.execute(() => next(request, handler)),
        request.signal,
      );
    } catch (error) {
      if (error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError) {
        counters.shortCircuited += 1;
        throw new TransportError({ kind: 'circuit-open', retryInMs: breaker.retryInMs() });
      }
      throw error;
    }
  };
}
