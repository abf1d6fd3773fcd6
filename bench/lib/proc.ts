import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The repository root (bench/lib → ../..). */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/** Child processes started by this run and not yet reaped. */
const live = new Set<Service>();

/** Whether `taskset` exists and there are at least 2 CPUs to split between load and server. */
export function pinningAvailable(): { ok: boolean; reason: string } {
  const cpus = availableParallelism();
  if (cpus < 2) return { ok: false, reason: `only ${cpus} CPU available` };
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  if (probe.error) return { ok: false, reason: `taskset not found (${(probe.error as NodeJS.ErrnoException).code ?? 'error'})` };
  return { ok: true, reason: `taskset: load generator on CPU 0, server on CPU 1 (${cpus} CPUs)` };
}

/** Pins every thread of this process to `cpu` (best effort; returns false when it failed). */
export function pinSelf(cpu: number): boolean {
  const result = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

/** CPU time (user + system) a process has used so far, in ms; undefined when unreadable. */
export function cpuTimeMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    const hz = 100; // USER_HZ is 100 on every Linux this runs on
    return (ticks * 1000) / hz;
  } catch {
    return undefined;
  }
}

export interface ServiceOptions {
  name: string;
  /** Arguments to node (e.g. GATEWAY_NODE_ARGS). */
  args: string[];
  env: Record<string, string>;
  /** Pin to this CPU with taskset (when `pin` is true). */
  cpu?: number;
  pin: boolean;
  /** The JSON log line's `msg` that announces readiness; its `url` field is taken. */
  readyMsg: string;
  readyTimeoutMs?: number;
  /** Open an IPC channel (for bench/sim-server.ts). */
  ipc?: boolean;
}

/** A service running as a child process. */
export class Service {
  url = '';
  /** The gateway's metrics endpoint (`metricsUrl` of its 'gateway listening' line), when it has one. */
  metricsUrl = '';
  /** Log lines per level (pino's `level` label), and messages per (level, msg). */
  readonly levels: Record<string, number> = {};
  readonly messages: Record<string, number> = {};
  private readonly tail: string[] = [];
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        live.delete(this);
        resolveExit(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** @internal */
  record(line: string): Record<string, unknown> | undefined {
    this.tail.push(line);
    if (this.tail.length > 40) this.tail.shift();
    let parsed: Record<string, unknown> | undefined;
    try {
      const value = JSON.parse(line) as unknown;
      if (value && typeof value === 'object') parsed = value as Record<string, unknown>;
    } catch {
      return undefined;
    }
    if (parsed) {
      const level = String(parsed.level ?? '?');
      this.levels[level] = (this.levels[level] ?? 0) + 1;
      const key = `${level}: ${String(parsed.msg ?? '')}`;
      this.messages[key] = (this.messages[key] ?? 0) + 1;
    }
    return parsed;
  }

  logTail(): string {
    return this.tail.join('\n');
  }

  /** Sends a message over IPC and waits for the answer with the same `id`. */
  ask<T>(message: Record<string, unknown>, timeoutMs = 5000): Promise<T> {
    const id = `${Date.now()}-${Math.random()}`;
    return new Promise<T>((resolveAnswer, reject) => {
      const timer = setTimeout(() => {
        this.child.off('message', onMessage);
        reject(new Error(`${this.name}: no IPC answer in ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (answer: unknown) => {
        const a = answer as { id?: string; value?: T };
        if (a?.id !== id) return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolveAnswer(a.value as T);
      };
      this.child.on('message', onMessage);
      this.child.send({ ...message, id });
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once reaped. */
  async stop(graceMs = 8000): Promise<number | null> {
    if (!this.running) return this.exitCode ?? null;
    // A process a probe suspended (SIGSTOP) would not act on SIGTERM until continued.
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) this.child.kill('SIGKILL');
    }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Starts a node child (pinned when asked) and waits for its "listening" log line. */
export function startService(options: ServiceOptions): Promise<Service> {
  const nodeArgs = [...options.args];
  const pinned = options.pin && options.cpu !== undefined;
  return launch({
    name: options.name,
    command: pinned ? 'taskset' : process.execPath,
    args: pinned ? ['-c', String(options.cpu), process.execPath, ...nodeArgs] : nodeArgs,
    env: options.env,
    ipc: options.ipc ?? false,
    readyTimeoutMs: options.readyTimeoutMs,
    readyUrl: (_line, parsed) => (parsed?.msg === options.readyMsg && typeof parsed.url === 'string' ? parsed.url : undefined),
  });
}

export interface CommandOptions {
  name: string;
  /** An executable on PATH (e.g. `redis-server`), run unpinned. */
  command: string;
  args: string[];
  env: Record<string, string>;
  /** The output line that announces readiness (e.g. redis's "Ready to accept connections"). */
  readyLine: RegExp;
  /** What `Service.url` is set to once ready. */
  url: string;
  readyTimeoutMs?: number;
}

/** Starts a non-node child (a database, say) and waits for `readyLine` in its output. */
export function startCommand(options: CommandOptions): Promise<Service> {
  return launch({
    name: options.name,
    command: options.command,
    args: options.args,
    env: options.env,
    ipc: false,
    readyTimeoutMs: options.readyTimeoutMs,
    readyUrl: (line) => (options.readyLine.test(line) ? options.url : undefined),
  });
}

interface LaunchOptions {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  ipc: boolean;
  readyTimeoutMs?: number;
  /** The service's URL when `line` announces readiness, else undefined. */
  readyUrl(line: string, parsed: Record<string, unknown> | undefined): string | undefined;
}

function launch(options: LaunchOptions): Promise<Service> {
  const child = spawn(options.command, options.args, {
    cwd: REPO_ROOT,
    env: options.env,
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  const service = new Service(options.name, child);
  live.add(service);

  return new Promise<Service>((resolveReady, reject) => {
    let settled = false;
    const timeoutMs = options.readyTimeoutMs ?? 30_000;
    const timer = setTimeout(() => fail(new Error(`${options.name}: not listening after ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void service.stop(1000).finally(() => reject(new Error(`${error.message}\n--- ${options.name} output ---\n${service.logTail()}`)));
    };
    // Always drain both pipes: a child blocked on a full pipe would distort every figure.
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        const parsed = service.record(line);
        if (!service.metricsUrl && typeof parsed?.metricsUrl === 'string') service.metricsUrl = parsed.metricsUrl;
        const url = settled ? undefined : options.readyUrl(line, parsed);
        if (url !== undefined) {
          settled = true;
          clearTimeout(timer);
          service.url = url;
          resolveReady(service);
        }
      });
    }
    child.once('error', (error) => fail(error));
    child.once('exit', (code, signal) => fail(new Error(`${options.name}: exited (code ${code}, signal ${signal}) before listening`)));
  });
}

/** Stops every child still running (reverse start order). */
export async function stopAll(): Promise<void> {
  const services = [...live].reverse();
  await Promise.allSettled(services.map((service) => service.stop(3000)));
}

/**
 * A bound on the whole run: after `limitMs` the children are stopped and the process exits
 * with 1, whatever it was waiting for (`report` says so first). The timer does not keep the
 * process alive; the function returned cancels it.
 */
export function limitRun(limitMs: number, report: (message: string) => void): () => void {
  const timer = setTimeout(() => {
    report(`still running after ${limitMs / 1000} s: stopping`);
    void stopAll().finally(() => process.exit(1));
  }, limitMs);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * Stops the children on SIGINT/SIGTERM, and kills any left on exit (last resort), so an
 * interrupted run leaves nothing behind.
 */
export function installCleanup(): void {
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping child processes…\n`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    for (const service of live) if (service.running) service.child.kill('SIGKILL');
  });
}

/** The parent's environment without anything that configures the service, plus `extra`. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const owned =
    /^(DEEPSEEK_|OTEL_|SIMULATOR_|CACHE_|BATCH_|AUTH_|HTTP_|METRICS_|CORS_|STREAM_|PERSISTED_DOCUMENTS_|REDIS_URL$|PORT$|HOST$|LOG_LEVEL$|NODE_ENV$|SHUTDOWN_GRACE_MS$|MAX_COMPLETIONS_PER_OPERATION$|MAX_SUBSCRIPTIONS_PER_CONNECTION$|GRAPHQL_)/;
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !owned.test(key)) env[key] = value;
  }
  // Each gateway child serves /metrics on a free port of its own (read from its log line).
  return { ...env, METRICS_PORT: '0', ...extra };
}

/**
 * How a bench starts the gateway: as production runs it (`npm run start:prod` and the
 * Dockerfile's CMD): the V8 flags of package.json's scripts, then the compiled build in
 * dist/, which `buildServers` makes first. Not through tsx, whose in-process compiler and
 * source maps are a development convenience: they held about 70 MB more RSS at 5,000
 * requests in flight. `BENCH_GATEWAY_NODE_FLAGS` (space-separated) replaces the flags, to
 * try others against the same references (e.g. `--max-semi-space-size=16`); the output says so.
 */
export const GATEWAY_NODE_FLAGS = process.env.BENCH_GATEWAY_NODE_FLAGS?.trim() ? process.env.BENCH_GATEWAY_NODE_FLAGS.trim().split(/\s+/) : ['--max-semi-space-size=32'];
export const GATEWAY_NODE_ARGS = [...GATEWAY_NODE_FLAGS, 'dist/src/main.js'];

/**
 * How a bench starts a reference server (bench/bare-server.ts, bench/bare-hop.ts, bench/bare-graphql-hop.ts): compiled
 * too (tsconfig.bench.json → dist-bench/), so the gateway and its references run the same
 * way and a ratio between them measures their code, not tsx's loader hooks (Apollo resolves
 * `require('crypto')` on every request, through them when run by tsx).
 */
export function referenceNodeArgs(name: 'bare-server' | 'bare-hop' | 'bare-graphql-hop'): string[] {
  return [`dist-bench/bench/${name}.js`];
}

/** Compiles the gateway to dist/ and the reference servers to dist-bench/, so a bench measures the current code. */
export function buildServers(): void {
  for (const args of [['run', '-s', 'build'], ['exec', '--', 'tsc', '-p', 'tsconfig.bench.json']]) {
    const built = spawnSync('npm', args, { stdio: 'inherit' });
    if (built.status !== 0) throw new Error(`npm ${args.join(' ')} failed (exit ${String(built.status ?? built.signal)})`);
  }
}
