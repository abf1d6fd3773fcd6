import type { Service } from '../proc';
import type { SimCounters } from './types';

/** Where a gateway child serves what: its origin, the WebSocket URL, /metrics. */
export const originOf = (gateway: Service): string => new URL(gateway.url).origin;
export const wsUrlOf = (gateway: Service): string => gateway.url.replace(/^http/, 'ws');
export const metricsUrlOf = (gateway: Service): string => gateway.metricsUrl;

/** A copy of the gateway's log-line counts (per "level: msg"), to diff later. */
export const logSnapshot = (gateway: Service): Record<string, number> => ({ ...gateway.messages });

/** Log lines per "level: msg" written since `before` (only those that grew). */
export function logDelta(gateway: Service, before: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [key, n] of Object.entries(gateway.messages)) {
    const grown = n - (before[key] ?? 0);
    if (grown > 0) delta[key] = grown;
  }
  return delta;
}

/** Sum of the lines of one level in a `logDelta`. */
export const linesAt = (delta: Record<string, number>, level: string): number =>
  Object.entries(delta)
    .filter(([key]) => key.startsWith(`${level}: `))
    .reduce((sum, [, n]) => sum + n, 0);

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once. */
export async function inParallel<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/** `{ "200": 198, "0 CLIENT_…": 2 }`, rendered `200×198, …`. */
export function tally(values: string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].map(([value, n]) => (n > 1 ? `${value} ×${n}` : value)).join(', ');
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** `5.4 MB`, or `49 KB` under a megabyte. */
export const mb = (bytes: number): string =>
  bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

/** The simulator's requests on paths ending with `suffix` (e.g. `/chat/completions`, `/models`). */
export function simCalls(counters: SimCounters, suffix: string): number {
  return Object.entries(counters.byPath)
    .filter(([path]) => path.endsWith(suffix))
    .reduce((sum, [, n]) => sum + n, 0);
}

/** The simulator child's counters, over IPC. */
export const simCounters = (sim: Service): Promise<SimCounters> => sim.ask<SimCounters>({ cmd: 'counters' });
