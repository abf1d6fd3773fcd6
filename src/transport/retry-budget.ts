export interface RetryBudgetOptions {
  /** Retries allowed per call in the window (0.2 = one retry per five calls). */
  ratio: number;
  /** Length of the sliding window. */
  windowMs?: number;
  /** Retries always allowed per window, so single failures in a quiet process still retry. */
  minRetries?: number;
  now?: () => number;
}

const BUCKETS = 10;

/**
 * A retry budget (as in Finagle and Envoy): retries are allowed only while the retries
 * made in the last `windowMs` stay within `ratio` × the calls made in it, plus a small
 * floor. It keeps a failing upstream from receiving (1 + maxRetries)× the normal load.
 * The window is kept as ten buckets, each a tenth of the window long.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #minRetries: number;
  readonly #bucketMs: number;
  readonly #now: () => number;
  readonly #stamps = new Array<number>(BUCKETS).fill(-1);
  readonly #calls = new Array<number>(BUCKETS).fill(0);
  readonly #retries = new Array<number>(BUCKETS).fill(0);

  constructor(options: RetryBudgetOptions) {
    this.#ratio = options.ratio;
    this.#minRetries = options.minRetries ?? 10;
    this.#bucketMs = Math.max(1, Math.floor((options.windowMs ?? 10_000) / BUCKETS));
    this.#now = options.now ?? Date.now;
  }

  /** Counts one call (each call, not each attempt). */
  recordCall(): void {
    this.#calls[this.#bucket()] += 1;
  }

  /** Asks for one retry; when allowed it is counted at once. */
  tryRetry(): boolean {
    const { calls, retries } = this.totals();
    const allowed = retries + 1 <= Math.max(this.#minRetries, this.#ratio * calls);
    if (allowed) this.#retries[this.#bucket()] += 1;
    return allowed;
  }

  /** Calls and retries in the current window. */
  totals(): { calls: number; retries: number } {
    const current = Math.floor(this.#now() / this.#bucketMs);
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.#stamps[i] > current - BUCKETS) {
        calls += this.#calls[i];
        retries += this.#retries[i];
      }
    }
    return { calls, retries };
  }

  #bucket(): number {
    const stamp = Math.floor(this.#now() / this.#bucketMs);
    const index = stamp % BUCKETS;
    if (this.#stamps[index] !== stamp) {
      this.#stamps[index] = stamp;
      this.#calls[index] = 0;
      this.#retries[index] = 0;
    }
    return index;
  }
}
