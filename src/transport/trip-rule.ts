export interface TripRuleOptions {
  /** Share of failed calls in the window that opens the circuit (0 < rate ≤ 1). */
  failureRate: number;
  /** Length of the sliding window the rate is taken over. */
  windowMs: number;
  /**
   * Calls the window must hold before its rate counts; also the run of failed calls in a row
   * that opens the circuit whatever the window holds.
   */
  minCalls: number;
  /** Clock in ms since epoch (default `Date.now`, which jest's fake timers drive). */
  now?: () => number;
}

/** What the rule has seen: calls and failures in the window, and the current run of failures. */
export interface TripRuleSnapshot {
  calls: number;
  failures: number;
  failuresInARow: number;
}

const BUCKETS = 10;

/**
 * When the circuit opens, from the outcomes of calls while it is CLOSED. Two conditions, the
 * first that holds wins:
 *
 * 1. **Rate**: the last `windowMs` hold at least `minCalls` calls and at least `failureRate` of
 *    them failed. This is the rule: with the defaults (50 % over 10 s, 20 calls) a partial
 *    failure of 30 % never opens the circuit, however much traffic there is.
 * 2. **Run**: the last `minCalls` calls all failed, however long they took. A rate alone is
 *    slow for a sudden outage after healthy traffic (after ten healthy seconds the window
 *    reaches 50 % failures only some 5 s into the outage, later when failed calls are slower
 *    than good ones) and blind at low traffic (fewer than `minCalls` calls per window never open it). A run of `minCalls`
 *    failures catches both: under load it comes within the first round of failed calls, well
 *    inside a second or two, while a partial failure of 30 % makes 20 in a row about once in
 *    3·10¹⁰ calls.
 *
 * The window is kept as ten time-aligned buckets of `windowMs / 10`, each stamped with its
 * period, so counts older than the window never linger after a quiet spell. (cockatiel's
 * `SamplingBreaker` advances one bucket per call, so after a quiet hour it still counts the
 * calls of the hour before: that, and the speed above, is why it is not used here.)
 */
export class TripRule {
  readonly #options: TripRuleOptions;
  readonly #now: () => number;
  readonly #bucketMs: number;
  readonly #stamps = new Array<number>(BUCKETS).fill(-1);
  readonly #calls = new Array<number>(BUCKETS).fill(0);
  readonly #failures = new Array<number>(BUCKETS).fill(0);
  #failuresInARow = 0;

  constructor(options: TripRuleOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#bucketMs = Math.max(1, Math.floor(options.windowMs / BUCKETS));
  }

  success(): void {
    this.#calls[this.#bucket()] += 1;
    this.#failuresInARow = 0;
  }

  /** Counts a failed call; true when the circuit should open now. */
  failure(): boolean {
    const bucket = this.#bucket();
    this.#calls[bucket] += 1;
    this.#failures[bucket] += 1;
    this.#failuresInARow += 1;
    const { minCalls, failureRate } = this.#options;
    if (this.#failuresInARow >= minCalls) return true;
    const { calls, failures } = this.snapshot();
    return calls >= minCalls && failures >= failureRate * calls;
  }

  /** Forgets everything (the circuit closed after an outage: judge afresh). */
  reset(): void {
    this.#stamps.fill(-1);
    this.#failuresInARow = 0;
  }

  snapshot(): TripRuleSnapshot {
    const current = Math.floor(this.#now() / this.#bucketMs);
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.#stamps[i] > current - BUCKETS) {
        calls += this.#calls[i];
        failures += this.#failures[i];
      }
    }
    return { calls, failures, failuresInARow: this.#failuresInARow };
  }

  #bucket(): number {
    const stamp = Math.floor(this.#now() / this.#bucketMs);
    const index = stamp % BUCKETS;
    if (this.#stamps[index] !== stamp) {
      this.#stamps[index] = stamp;
      this.#calls[index] = 0;
      this.#failures[index] = 0;
    }
    return index;
  }
}
