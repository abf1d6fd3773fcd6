import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import { TIMED_OUT, withTimeout } from './abort';

export type StoreCircuit = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

/** What `StoreBreaker.run` answers instead of calling the store. */
export const SKIPPED: unique symbol = Symbol('skipped');

/** A store call that did not answer within the store timeout. */
export class StoreTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the cache store did not answer within ${timeoutMs} ms`);
    this.name = 'StoreTimeout';
  }
}

export interface StoreBreakerOptions {
  /** Consecutive failed or timed-out store calls that open the circuit (CACHE_BREAKER_THRESHOLD). */
  threshold: number;
  /** How long the store is skipped before one call probes it (CACHE_BREAKER_COOLDOWN_MS). */
  cooldownMs: number;
  /** Each store call's deadline (CACHE_STORE_TIMEOUT_MS). */
  timeoutMs: number;
  onStateChange?: (state: StoreCircuit) => void;
}

/**
 * The cache store's own circuit breaker (cockatiel's, with a consecutive-failure rule):
 * after `threshold` store calls in a row fail or time out, reads and writes skip the store
 * at once (the cache fails open: misses, no writes) for `cooldownMs`; then one call probes
 * it, and every other call keeps skipping until the probe answers. A hung Redis thus
 * costs one timeout per cool-down, not one per request.
 */
export class StoreBreaker {
  readonly #policy: CircuitBreakerPolicy;
  readonly #timeoutMs: number;

  constructor(options: StoreBreakerOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#policy = circuitBreaker(handleAll, {
      halfOpenAfter: options.cooldownMs,
      breaker: new ConsecutiveBreaker(options.threshold),
    });
    if (options.onStateChange) {
      const notify = options.onStateChange;
      this.#policy.onStateChange((state) => notify(nameOf(state)));
    }
  }

  get state(): StoreCircuit {
    return nameOf(this.#policy.state);
  }

  /**
   * Runs one store call under the store timeout, through the breaker. Answers SKIPPED at
   * once while the circuit is open or a probe is running (cockatiel would make the caller
   * wait for the probe); throws the store's error or a `StoreTimeout`.
   */
  async run<T>(work: () => Promise<T>): Promise<T | typeof SKIPPED> {
    if (this.#policy.state === CircuitState.HalfOpen) return SKIPPED;
    try {
      return await this.#policy.execute(async () => {
        const outcome = await withTimeout(work(), this.#timeoutMs);
        if (outcome === TIMED_OUT) throw new StoreTimeout(this.#timeoutMs);
        return outcome;
      });
    } catch (error) {
      if (error instanceof BrokenCircuitError) return SKIPPED;
      throw error;
    }
  }
}

/**
 * One store call through `breaker` for a caller with a fallback of its own: the call's
 * answer, or undefined when it failed, timed out or was skipped (`onFailure` hears of a
 * failure or a timeout, not of a skip).
 */
export async function attempt<T>(breaker: StoreBreaker, work: () => Promise<T>, onFailure?: (error: unknown) => void): Promise<T | undefined> {
  try {
    const outcome = await breaker.run(work);
    return outcome === SKIPPED ? undefined : outcome;
  } catch (error) {
    onFailure?.(error);
    return undefined;
  }
}

function nameOf(state: CircuitState): StoreCircuit {
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
