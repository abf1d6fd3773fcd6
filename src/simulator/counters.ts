import type { SimulatorCounters } from './types';

/** Request accounting for one simulator; the getters hand out snapshots. */
export class Counters implements SimulatorCounters {
  private totalCount = 0;
  private paths: Record<string, number> = {};
  private statuses: Record<number, number> = {};
  private current = 0;
  private peak = 0;
  private connections = 0;

  get total(): number {
    return this.totalCount;
  }
  get byPath(): Record<string, number> {
    return { ...this.paths };
  }
  get inFlight(): number {
    return this.current;
  }
  get maxInFlight(): number {
    return this.peak;
  }
  get connectionsOpened(): number {
    return this.connections;
  }
  get byStatus(): Record<number, number> {
    return { ...this.statuses };
  }

  requestStarted(path: string): void {
    this.totalCount += 1;
    this.paths[path] = (this.paths[path] ?? 0) + 1;
    this.current += 1;
    this.peak = Math.max(this.peak, this.current);
  }

  requestEnded(): void {
    this.current -= 1;
  }

  statusSent(status: number): void {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
  }

  connectionOpened(): void {
    this.connections += 1;
  }

  reset(): void {
    this.totalCount = 0;
    this.paths = {};
    this.statuses = {};
    this.peak = this.current;
    this.connections = 0;
  }
}
