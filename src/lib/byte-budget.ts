/**
 * Bytes held at once, bounded: a counter that admits what fits and counts what it refuses.
 * The HTTP edge keeps one for request bodies (src/http/body-budget.ts).
 */
export class ByteBudget {
  #held = 0;
  #refused = 0;

  /** `maxBytes` 0: no bound. */
  constructor(readonly maxBytes: number) {}

  /** Bytes held by requests in flight. */
  get held(): number {
    return this.#held;
  }

  /** Requests refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /** Takes `bytes` if they fit; false (and counted as refused) if not. */
  take(bytes: number): boolean {
    if (this.maxBytes > 0 && this.#held + bytes > this.maxBytes) {
      this.#refused += 1;
      return false;
    }
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }
}
