/**
 * `npm run probes [-- --quick] [-- --only=name,name]`: reproduces known attacks on the
 * gateway and prints, per probe, what the attacked request got and what it cost the
 * server (wall, CPU, RSS from /proc) and everyone else (the latency of a /healthz poller
 * during the attack). The figures are the "before" / "after" of the fixes.
 *
 * The gateway (production mode, a fake key) and the DeepSeek simulator are child
 * processes on 127.0.0.1; the gateway is pinned to CPU 1 and this process, its clients and
 * the simulator to CPU 0 when taskset exists. Probes that leave state behind (metric
 * series, buffered memory) get a gateway of their own; the others share one. Every probe
 * is bounded in count and time, and every process started is stopped (also on Ctrl-C).
 * See bench/README.md.
 */
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { parseArgs } from './lib/args';
import { observe } from './lib/observe';
import { buildServers, childEnv, GATEWAY_NODE_ARGS, installCleanup, limitRun, pinningAvailable, pinSelf, startService, stopAll, type Service } from './lib/proc';
import { connections, documents, errors, metrics, upstream } from './lib/probes';
import type { Probe, ProbeContext, ProbeLimits, ProbeRow } from './lib/probes/types';
import { writeResults } from './lib/results';
import { elapsedMs, round } from './lib/stats';
import { renderTable } from './lib/table';

const PROBES: Probe[] = [
  metrics.metricsWsOpName,
  metrics.metricsHttpOpName,
  documents.typenameAliases,
  documents.entities60k,
  documents.repeatedFields,
  documents.messages200k,
  documents.bigBodies,
  connections.slowSockets,
  connections.wsSlowReader,
  upstream.sseCrossSite,
  errors.clientAbortNoise,
  errors.apqMismatch,
  errors.entitiesUnknownType,
  upstream.modelsAliases,
  errors.suggestions,
  upstream.redisHang,
];

/** Close to the figures of the attacks these reproduce; the whole run stays near 3 minutes. */
const FULL: ProbeLimits = {
  wsOpNames: 40,
  wsOpNameBytes: 1024 * 1024,
  wsMetricsScrapes: 3,
  httpOpNames: 200,
  httpOpNameChars: 40_000,
  httpMetricsScrapes: 1,
  typenameAliases: 300_000,
  entities: 60_000,
  repeatedFields: [1_000, 10_000, 100_000],
  messages: 200_000,
  bigBodies: 40,
  bigBodyBytes: 7 * 1024 * 1024,
  slowSockets: 500,
  slowSocketCheckpointsS: [5, 35],
  wsSubscriptions: 100,
  wsPromptWordChars: 20_000,
  wsPausedS: 10,
  abortRequests: 200,
  abortAfterMs: 100,
  abortSimLatencyMs: 500,
  modelAliases: 20,
  redisLoadS: 5,
  redisConnections: 10,
};

/** The same probes, smaller: a smoke run of the script itself. */
const QUICK: ProbeLimits = {
  ...FULL,
  wsOpNames: 8,
  wsOpNameBytes: 256 * 1024,
  wsMetricsScrapes: 1,
  httpOpNames: 40,
  typenameAliases: 60_000,
  entities: 15_000,
  repeatedFields: [1_000, 10_000],
  messages: 40_000,
  bigBodies: 12,
  bigBodyBytes: 7 * 1024 * 1024,
  slowSockets: 100,
  slowSocketCheckpointsS: [2, 4],
  wsSubscriptions: 20,
  wsPausedS: 3,
  abortRequests: 50,
  redisLoadS: 2,
};

const API_KEY = 'sk-probes-0123456789abcdef';
const SIM_LATENCY_MS = 20;
/** A run longer than this is stopped (every child with it). */
const RUN_LIMIT_MS = 8 * 60_000;

const log = (message: string) => process.stderr.write(`[probes ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

interface Run {
  sim: Service;
  pin: boolean;
  limits: ProbeLimits;
  quick: boolean;
  /** The gateway probes without `ownGateway` share; started on first use, again if it died. */
  shared?: Service;
}

function startGateway(run: Run, name: string, extraEnv: Record<string, string> = {}): Promise<Service> {
  return startService({
    name,
    args: GATEWAY_NODE_ARGS,
    env: childEnv({
      NODE_ENV: 'production',
      AUTH_MODE: 'none',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      DEEPSEEK_API_KEY: API_KEY,
      DEEPSEEK_BASE_URL: run.sim.url,
      ...extraEnv,
    }),
    cpu: 1,
    pin: run.pin,
    readyMsg: 'gateway listening',
    readyTimeoutMs: 60_000,
  });
}

/** Runs one probe within its time limit; its deferred cleanups run however it ends. */
async function runProbe(run: Run, probe: Probe): Promise<ProbeRow[]> {
  const skipped = probe.skip?.();
  if (skipped) return [{ probe: probe.name, attack: '', outcome: `skipped: ${skipped}`, harm: '' }];
  const cleanups: Array<() => unknown> = [];
  const controller = new AbortController();
  let own: Promise<Service> | undefined;
  const gatewaysUsed: Service[] = [];
  const ctx: ProbeContext = {
    limits: run.limits,
    quick: run.quick,
    sim: run.sim,
    simLatencyMs: SIM_LATENCY_MS,
    signal: controller.signal,
    log: (message) => log(`${probe.name}: ${message}`),
    defer: (close) => cleanups.push(close),
    startGateway: async (extraEnv) => {
      const gateway = await startGateway(run, `gateway (${probe.name})`, extraEnv);
      cleanups.push(() => gateway.stop(5000));
      gatewaysUsed.push(gateway);
      return gateway;
    },
    gateway: async () => {
      if (probe.ownGateway) return (own ??= ctx.startGateway({}));
      if (!run.shared?.running) {
        run.shared = await startGateway(run, 'gateway (shared)');
        log(`shared gateway at ${run.shared.url} (pid ${run.shared.pid})`);
      }
      if (!gatewaysUsed.includes(run.shared)) gatewaysUsed.push(run.shared);
      return run.shared;
    },
    observe: (gateway, attack) => observe({ pid: gateway.pid, origin: new URL(gateway.url).origin }, attack),
  };

  const limitMs = probe.timeoutMs(run.limits);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<ProbeRow[]>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve([{ probe: probe.name, attack: '', outcome: `TIMEOUT: stopped after ${limitMs / 1000} s`, harm: '' }]);
    }, limitMs);
  });
  let rows: ProbeRow[];
  try {
    rows = await Promise.race([probe.run(ctx), timedOut]);
  } catch (error) {
    rows = [{ probe: probe.name, attack: '', outcome: `FAILED: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, harm: '' }];
  } finally {
    clearTimeout(timer);
  }
  // A gateway that died during the probe (out of memory, say) is part of the outcome.
  for (const gateway of gatewaysUsed.filter((g) => !g.running)) {
    const logTail = gateway.logTail().split('\n').map((line) => line.slice(0, 500));
    for (const row of rows) {
      row.outcome += `; ${gateway.name} DIED (its last log lines are in the JSON)`;
      row.details = { ...row.details, gatewayDied: { name: gateway.name, logTail } };
    }
  }
  for (const close of cleanups.reverse()) {
    await Promise.race([Promise.resolve().then(close), new Promise((resolve) => setTimeout(resolve, 10_000))]).catch(() => undefined);
  }
  return rows;
}

function table(rows: ProbeRow[]): string {
  const ms = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '-' : round(value, 0));
  const mb = (value: number | undefined) => (value === undefined ? '-' : round(value, 0));
  return renderTable(
    'probes (server = the gateway child; /healthz = a side client polling every 10 ms during the attack)',
    ['probe', 'outcome', 'wall ms', 'server CPU ms', 'RSS before MB', 'RSS after MB', 'RSS peak MB', '/healthz max ms', '/healthz p99 ms', 'harm'],
    rows.map((row) => [
      row.probe,
      row.outcome,
      ms(row.cost?.wallMs),
      ms(row.cost?.cpuMs),
      mb(row.cost?.rssBeforeMb),
      mb(row.cost?.rssAfterMb),
      mb(row.cost?.rssPeakMb),
      ms(row.cost?.healthz.maxMs),
      ms(row.cost?.healthz.p99Ms),
      row.harm,
    ]),
  );
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(
    process.argv.slice(2),
    PROBES.map((p) => p.name),
  );
  installCleanup();
  buildServers();
  limitRun(RUN_LIMIT_MS, log);

  const started = process.hrtime.bigint();
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg().map((v) => v.toFixed(2));
  // Counted before pinning: afterwards this process sees one CPU.
  const cpuCount = availableParallelism();
  const pinning = pinningAvailable();
  const pin = pinning.ok && pinSelf(0);
  const pinNote = pin ? pinning.reason : `no CPU pinning (${pinning.ok ? 'taskset -p failed' : pinning.reason})`;
  const machine =
    `machine: ${cpuCount} CPUs (${cpus()[0]?.model.trim() ?? '?'}), Node ${process.version}, ` +
    `${process.platform} ${release()}; ${pinNote}; load average at start ${loadAtStart.join(' ')}`;
  process.stdout.write(`${machine}\n`);
  log(`${quick ? 'quick' : 'full'} run of ${[...only].join(', ')}`);

  const limits = quick ? QUICK : FULL;
  const sim = await startService({
    name: 'simulator',
    args: ['--import', 'tsx', 'bench/sim-server.ts'],
    env: childEnv({ HOST: '127.0.0.1', SIMULATOR_PORT: '0', SIMULATOR_LATENCY_MS: String(SIM_LATENCY_MS), SIMULATOR_TOKEN_DELAY_MS: '0' }),
    cpu: 0,
    pin,
    readyMsg: 'simulator listening',
    ipc: true,
  });
  log(`simulator at ${sim.url} (latency ${SIM_LATENCY_MS} ms, token delay 0)`);
  const run: Run = { sim, pin, limits, quick };

  const rows: ProbeRow[] = [];
  const durations: Record<string, number> = {};
  try {
    for (const probe of PROBES.filter((p) => only.has(p.name))) {
      const probeStart = process.hrtime.bigint();
      log(`${probe.name}: start${probe.ownGateway ? ' (own gateway)' : ''}`);
      const probeRows = await runProbe(run, probe);
      durations[probe.name] = round(elapsedMs(probeStart) / 1000, 1);
      for (const row of probeRows) log(`${row.probe}: ${row.outcome} | ${row.harm}`);
      rows.push(...probeRows);
    }
  } finally {
    await stopAll();
  }

  const runSeconds = round(elapsedMs(started) / 1000, 1);
  const file = writeResults('probes', {
    startedAt,
    quick,
    pinning: pinNote,
    loadAverage: { start: loadAtStart, end: loadavg().map((v) => v.toFixed(2)) },
    limits,
    simulator: { latencyMs: SIM_LATENCY_MS, tokenDelayMs: 0 },
    runSeconds,
    probeSeconds: durations,
    rows,
  });
  const attacks = rows.filter((row) => row.attack).map((row) => `  ${row.probe}: ${row.attack}`);
  process.stdout.write(
    `${table(rows)}\n\nwhat each probe sent:\n${attacks.join('\n')}\n\n` +
      `run took ${runSeconds} s; load average at end ${loadavg().map((v) => v.toFixed(2)).join(' ')}\nresults: ${file}\n`,
  );
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    process.stderr.write(`probes failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await stopAll();
    process.exit(1);
  },
);
