/**
 * Gathers items into batches: a batch closes `windowMs` after its first item, or at once
 * when it reaches `maxSize`. With `windowMs` 0 it closes after the current promise jobs
 * have run, like DataLoader's own scheduling, so every load issued in the same tick
 * (including the dispatches of many per-request loaders) lands in one batch.
 */
export class BatchWindow<T> {
  private pending: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Identifies the open batch, so a scheduled close of an already closed batch is a no-op. */
  private generation = 0;
  private scheduled = false;

  constructor(
    private readonly options: { windowMs: number; maxSize: number; run: (batch: T[]) => void },
  ) {}

  add(item: T): void {
    this.pending.push(item);
    if (this.pending.length >= this.options.maxSize) {
      this.close();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.generation);
    }
  }

  private schedule(generation: number): void {
    const closeIfCurrent = (): void => {
      if (generation === this.generation) this.close();
    };
    if (this.options.windowMs > 0) {
      this.timer = setTimeout(closeIfCurrent, this.options.windowMs);
    } else {
      void Promise.resolve().then(() => process.nextTick(closeIfCurrent));
    }
  }

  private close(): void {
    const batch = this.pending;
    this.pending = [];
    this.generation += 1;
    this.scheduled = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (batch.length > 0) this.options.run(batch);
  }
}
