import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Readers of a child's /proc entries (Linux only; every reader returns undefined when the
 * entry is unreadable, e.g. the process has gone). CPU time is `cpuTimeMs` in proc.ts.
 */

/** Resident set size now (`VmRSS`) and its high-water mark (`VmHWM`), in MiB. */
export function memoryMb(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const rss = kb('VmRSS');
    const hwm = kb('VmHWM');
    return Number.isFinite(rss) && Number.isFinite(hwm) ? { rss: rss / 1024, hwm: hwm / 1024 } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resets `VmHWM` to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux 4.0+), so the
 * peak read later belongs to one measured window and not to an earlier probe. Returns
 * false when the kernel refused (then the window's peak is only the sampled maximum).
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Open file descriptors (sockets included). */
export function openFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** The soft limit on open files (`Max open files` in /proc/<pid>/limits). */
export function fdLimit(pid: number): number | undefined {
  try {
    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
    const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Samples `VmRSS` every `intervalMs` until stopped: the series and its maximum. */
export class RssSampler {
  readonly series: Array<{ ms: number; mb: number }> = [];
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();

  constructor(
    private readonly pid: number,
    intervalMs: number,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  get maxMb(): number {
    return this.series.length ? Math.max(...this.series.map((s) => s.mb)) : Number.NaN;
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    const memory = memoryMb(this.pid);
    if (memory) this.series.push({ ms: Date.now() - this.started, mb: memory.rss });
  }
}
