import { cpuTimeMs } from './proc';
import { memoryMb, resetPeakRss, RssSampler } from './procfs';
import { HealthPoller, type StallFigures } from './stall';
import { elapsedMs } from './stats';

/** A server's cost over one measured window, from /proc and a side client. */
export interface WindowCost {
  wallMs: number;
  /** user + system CPU time of the server process (10 ms ticks). */
  cpuMs?: number;
  rssBeforeMb?: number;
  rssAfterMb?: number;
  /** `VmHWM` at the end, reset at the start (else the sampled maximum; see `peakFrom`). */
  rssPeakMb?: number;
  peakFrom: 'VmHWM' | 'samples';
  /** `GET /healthz` every 10 ms during the window, from another connection. */
  healthz: StallFigures;
  /** VmRSS every `sampleMs` (JSON only). */
  rssSeries: Array<{ ms: number; mb: number }>;
}

export interface ObserveOptions {
  pid: number;
  /** The server's origin (http://127.0.0.1:port) for the /healthz poller. */
  origin: string;
  pollMs?: number;
  sampleMs?: number;
}

/**
 * Runs `attack` and measures the server around it: wall time, CPU delta, RSS before /
 * after / peak, and the latency other requests (a /healthz poller) saw meanwhile. The
 * attack's own failure is re-thrown after the window is closed.
 */
export async function observe<T>(options: ObserveOptions, attack: () => Promise<T>): Promise<{ value: T; cost: WindowCost }> {
  const { pid } = options;
  const poller = await HealthPoller.start(options.origin, options.pollMs ?? 10);
  const hwmReset = resetPeakRss(pid);
  const before = memoryMb(pid);
  const sampler = new RssSampler(pid, options.sampleMs ?? 50);
  const cpuBefore = cpuTimeMs(pid);
  const start = process.hrtime.bigint();
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await attack() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const wallMs = elapsedMs(start);
  const cpuAfter = cpuTimeMs(pid);
  const after = memoryMb(pid);
  sampler.stop();
  const healthz = await poller.stop();
  if (!outcome.ok) throw outcome.error;
  const peaks = [sampler.maxMb, after?.rss ?? Number.NaN, hwmReset ? (after?.hwm ?? Number.NaN) : Number.NaN].filter(Number.isFinite);
  return {
    value: outcome.value,
    cost: {
      wallMs,
      cpuMs: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined,
      rssBeforeMb: before?.rss,
      rssAfterMb: after?.rss,
      rssPeakMb: peaks.length ? Math.max(...peaks) : undefined,
      peakFrom: hwmReset && after ? 'VmHWM' : 'samples',
      healthz,
      rssSeries: sampler.series,
    },
  };
}
