import type { Fault, FaultInjector } from './types';

interface Queued {
  fault: Fault;
  remaining: number;
  path?: string;
}

/** mulberry32: a tiny seeded PRNG, so a chaos run can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Queued (FIFO, optionally per path) faults first, then the random mix. */
export class Faults implements FaultInjector {
  private queue: Queued[] = [];
  private mix: Array<{ probability: number; fault: Fault }> = [];
  private random: () => number = Math.random;

  get pending(): number {
    return this.queue.reduce((sum, entry) => sum + entry.remaining, 0);
  }

  inject(fault: Fault, options: { count?: number; path?: string } = {}): void {
    const count = options.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new RangeError('inject: count must be a positive integer');
    this.queue.push({ fault, remaining: count, path: options.path });
  }

  setRandom(mix: Array<{ probability: number; fault: Fault }>, seed?: number): void {
    this.mix = [...mix];
    this.random = seededRandom(seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  clear(): void {
    this.queue = [];
    this.mix = [];
  }

  /** The fault for the next request to `path`, if any (consumes one queued use). */
  take(path: string): Fault | undefined {
    const index = this.queue.findIndex((entry) => entry.path === undefined || entry.path === path);
    if (index >= 0) {
      const entry = this.queue[index];
      entry.remaining -= 1;
      if (entry.remaining === 0) this.queue.splice(index, 1);
      return entry.fault;
    }
    for (const { probability, fault } of this.mix) {
      if (this.random() < probability) return fault;
    }
    return undefined;
  }
}
