/**
 * `npm run bench:layers`: what each layer of a cache miss costs on top of the one below it,
 * in-process, against the simulator (a child process at 20 ms, pinned to CPU 0 with this
 * process on CPU 1 when taskset exists). Closed loops of `--concurrency` calls, each with a
 * prompt of its own (no cache hit, no join: every call is an upstream call), through:
 *
 * 1. **undici** (the reference): an undici `Pool` request with the wire body the client
 *    sends, and its JSON body read; what `bench/bare-hop.ts` does for each miss;
 * 2. **client**: `DeepSeekClient.chat` (the transport's policies: key pool, bulkhead, retry,
 *    deadline, breaker, call telemetry, the exchange; the wire mapping and the response's
 *    checks and normalisation);
 * 3. **service**: a per-operation loader of `CompletionService` (DataLoader, the coalescer's
 *    batch, the in-flight map, one cache read and one cache write in the in-memory store);
 * 4. **service + quotas**: the same, paid for by a quota account with every limit set (as
 *    row k's QUOTAS_FILE): each call's worst case reserved before it starts, settled after.
 *
 * Telemetry is off (no-op tracer and meter) and the logger silent: these are the layers' own
 * costs; `npm run bench` rows d and k include telemetry and logging. Each round runs every
 * layer once, in an order that rotates from round to round, after warm-up rounds that are
 * not counted; per layer, the median over the rounds of CPU µs per call (this process's
 * `process.cpuUsage`, so the simulator's work is not in it) and of garbage-collection ms per
 * call (`PerformanceObserver` 'gc' entries), its ratio to undici and what it adds to the
 * layer below. The script runs with the gateway's V8 flag (`--max-semi-space-size=32`, as
 * package.json's scripts start it), so garbage collection costs what it costs in the gateway.
 * About a minute.
 *
 *   npm run bench:layers
 *   npm run bench:layers -- --calls=2000 --concurrency=10
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { cpus, loadavg } from 'node:os';
import { Pool } from 'undici';
import { metrics } from '@opentelemetry/api';
import { CompletionService } from '../src/batching/completion-service';
import { createCompletionCache } from '../src/cache/completion-cache';
import { testConfig } from '../src/config';
import { DeepSeekClient } from '../src/deepseek/client';
import { toWireChatRequest } from '../src/deepseek/request-body';
import type { ChatRequest } from '../src/deepseek/types';
import { CounterStore, parsePolicies, Quotas, type QuotaAccount } from '../src/quotas';
import { noopInstruments } from '../src/telemetry/instruments';
import { silentLogger } from '../src/telemetry/logger';
import { countArg } from './lib/args';
import { childEnv, installCleanup, limitRun, pinningAvailable, pinSelf, startService, stopAll } from './lib/proc';
import { writeResults } from './lib/results';
import { median } from './lib/stats';
import { renderTable } from './lib/table';

const SIM_LATENCY_MS = 20;
const API_KEY = 'sk-bench-layers';
const WARMUP_ROUNDS = 3;
const ROUNDS = 6;
/** The run stops itself after this long, whatever happens. */
const RUN_LIMIT_MS = 5 * 60_000;
/** As row k: every limit set, none reachable. */
const QUOTAS_YAML =
  'default:\n  requestsPerMinute: 10000000\n  upstreamCallsPerMinute: 1000000\n  tokensPerDay: 1000000000000\n  usdPerDay: 1000000\n  usdPerMonth: 1000000\n  maxConcurrentStreams: 1000\n';

const LAYERS = ['undici', 'client', 'service', 'service + quotas'] as const;
type Layer = (typeof LAYERS)[number];

function log(message: string): void {
  process.stderr.write(`[layers ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Garbage-collection time observed while `work` runs, in ms. */
async function withGcTime<T>(work: () => Promise<T>): Promise<{ value: T; gcMs: number }> {
  let gcMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    const value = await work();
    // GC entries are delivered asynchronously: let the last ones arrive.
    await new Promise((resolve) => setImmediate(resolve));
    return { value, gcMs };
  } finally {
    observer.disconnect();
  }
}

async function main(): Promise<void> {
  const calls = countArg('calls', 4000, 100, 100_000);
  // The client's concurrency cap (DEEPSEEK_MAX_CONCURRENCY below) must not queue the calls.
  const concurrency = countArg('concurrency', 50, 1, 256);
  installCleanup();
  limitRun(RUN_LIMIT_MS, log);

  const pinning = pinningAvailable();
  const sim = await startService({
    name: 'simulator',
    args: ['--import', 'tsx', 'bench/sim-server.ts'],
    env: childEnv({ HOST: '127.0.0.1', SIMULATOR_PORT: '0', SIMULATOR_LATENCY_MS: String(SIM_LATENCY_MS), SIMULATOR_TOKEN_DELAY_MS: '0' }),
    cpu: 0,
    pin: pinning.ok,
    readyMsg: 'simulator listening',
    ipc: true,
  });
  const pinned = pinning.ok && pinSelf(1);
  log(pinned ? 'taskset: simulator on CPU 0, this process (the layers) on CPU 1' : `no CPU pinning (${pinning.reason})`);
  log(`simulator at ${sim.url} (latency ${SIM_LATENCY_MS} ms); load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);

  const baseUrl = sim.url.replace(/\/+$/, '');
  const config = testConfig({ DEEPSEEK_API_KEY: API_KEY, DEEPSEEK_BASE_URL: baseUrl, DEEPSEEK_MAX_CONCURRENCY: '256' });
  const logger = silentLogger();
  const instruments = noopInstruments();
  const client = new DeepSeekClient({ config: config.deepseek, logger, instruments });
  const cache = createCompletionCache({ config: config.cache, logger, instruments });
  const service = new CompletionService({ cache, upstream: client, logger, batching: config.batching, instruments });
  const quotas = new Quotas({
    policies: parsePolicies(QUOTAS_YAML),
    store: new CounterStore({ replicas: 1, timeoutMs: 100, keyPrefix: 'bench', openTtlSec: 660, logger }),
    prices: config.deepseek.prices,
    defaultMaxOutputTokens: config.quotas.defaultMaxOutputTokens,
    meter: metrics.getMeter('bench'),
    logger,
  });
  const account = quotas.accountOf('bench', 'bench') as QuotaAccount;
  const pool = new Pool(baseUrl, { connections: 256 });

  const tag = Date.now().toString(36);
  let n = 0;
  const request = (): ChatRequest => ({ kind: 'chat', model: 'deepseek-flash', messages: [{ role: 'user', content: `layers ${tag} ${(n += 1)}` }], thinking: false });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` };
  const viaLoader = async (quota: QuotaAccount | undefined): Promise<void> => {
    const view = await service.createLoaders({ quota }).completion.load({ request: request(), policy: 'USE' });
    if (view.cached || typeof view.content !== 'string') throw new Error('expected an upstream answer');
  };
  const ways: Record<Layer, () => Promise<void>> = {
    undici: async () => {
      const response = await pool.request({ path: '/chat/completions', method: 'POST', headers, body: JSON.stringify(toWireChatRequest(request(), false)) });
      const body = (await response.body.json()) as { choices?: unknown[] };
      if (response.statusCode !== 200 || !Array.isArray(body.choices)) throw new Error(`simulator answered ${response.statusCode}`);
    },
    client: async () => {
      const result = await client.chat(request());
      if (typeof result.content !== 'string') throw new Error('expected content');
    },
    service: () => viaLoader(undefined),
    'service + quotas': () => viaLoader(account),
  };

  /** `calls` calls of `layer` in `concurrency` closed loops: CPU µs and GC ms per call. */
  const measure = async (layer: Layer): Promise<{ cpuUs: number; gcMs: number }> => {
    let left = calls;
    const loop = async (): Promise<void> => {
      while (left > 0) {
        left -= 1;
        await ways[layer]();
      }
    };
    const start = process.cpuUsage();
    const { gcMs } = await withGcTime(() => Promise.all(Array.from({ length: concurrency }, loop)));
    const used = process.cpuUsage(start);
    return { cpuUs: (used.user + used.system) / calls, gcMs: gcMs / calls };
  };

  type Round = Record<Layer, { cpuUs: number; gcMs: number }>;
  const rounds: Round[] = [];
  try {
    for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round += 1) {
      // Rotate which layer goes first, so drift on a shared machine falls on all alike.
      const order = LAYERS.map((_, index) => LAYERS[(index + round) % LAYERS.length]);
      const result = {} as Round;
      for (const layer of order) result[layer] = await measure(layer);
      if (round >= WARMUP_ROUNDS) rounds.push(result);
      log(`${round < WARMUP_ROUNDS ? 'warm-up ' : ''}round ${round + 1}: ${LAYERS.map((layer) => `${layer} ${result[layer].cpuUs.toFixed(0)} µs`).join(', ')}`);
    }
  } finally {
    await pool.close();
    await cache.close();
    await stopAll();
  }

  const cpu = Object.fromEntries(LAYERS.map((layer) => [layer, median(rounds.map((round) => round[layer].cpuUs))])) as Record<Layer, number>;
  const gc = Object.fromEntries(LAYERS.map((layer) => [layer, median(rounds.map((round) => round[layer].gcMs))])) as Record<Layer, number>;
  process.stdout.write(
    [
      renderTable(
        `CPU µs per call, each round (${calls.toLocaleString('en-US')} calls per layer, ${concurrency} at a time, simulator ${SIM_LATENCY_MS} ms, after ${WARMUP_ROUNDS} warm-up rounds)`,
        ['round', ...LAYERS],
        rounds.map((round, index) => [index + 1, ...LAYERS.map((layer) => round[layer].cpuUs.toFixed(1))]),
      ),
      renderTable(
        'medians over the rounds',
        ['layer', 'CPU µs/call', '× undici', 'added to the layer below, µs', 'GC ms per 1,000 calls'],
        LAYERS.map((layer, index) => [
          layer,
          cpu[layer].toFixed(1),
          `${(cpu[layer] / cpu.undici).toFixed(2)}×`,
          index === 0 ? '-' : (cpu[layer] - cpu[LAYERS[index - 1]]).toFixed(1),
          (gc[layer] * 1000).toFixed(0),
        ]),
      ),
      'telemetry off (no-op tracer and meter), logger silent; every call a distinct prompt, so an upstream call each.',
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; ${pinned ? 'pinned' : 'not pinned'}; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
      `results: ${writeResults('layers', { calls, concurrency, simLatencyMs: SIM_LATENCY_MS, pinned, rounds, medianCpuUs: cpu, medianGcMs: gc })}`,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  void stopAll().finally(() => process.exit(1));
});
