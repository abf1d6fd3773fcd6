/**
 * `npm run chaos [-- --quick] [-- --former-rule]`: the gateway under sustained load while the
 * upstream fails.
 *
 * The DeepSeek simulator runs IN this process (so its faults can be switched live); the
 * gateway runs as a child process pointed at it (pinned to CPU 1 when taskset exists).
 * Phases (full run, 75 s of load in all):
 *   1. steady   40 s  random faults per upstream request: 10% 503, 2% connection reset, 1% hang
 *   2. partial  15 s  20% connection resets + 10% 503 (70% of attempts succeed): must not trip
 *   3. outage    6 s  every upstream request answers 503 (trips the circuit breaker)
 *   4. recovery 14 s  no faults (the breaker half-opens after its cooldown and closes)
 * Load: 20 concurrent clients in closed loops, each request a distinct prompt with
 * `cache: BYPASS`, so every request goes upstream. Talks to 127.0.0.1 only; stops by itself.
 * `--former-rule` runs the gateway with the trip rule this replaced (5 failed calls in a row:
 * DEEPSEEK_BREAKER_MIN_CALLS=5 with DEEPSEEK_BREAKER_FAILURE_RATE=1), for comparison.
 */
import { loadavg } from 'node:os';
import { Pool } from 'undici';
import type { Fault } from '../src/simulator';
import { startSimulator } from '../src/simulator';
import { parseArgs } from './lib/args';
import { COMPLETION_BYPASS_QUERY, GraphQLClient, upstreamStatus, type CompletionData, type UpstreamSnapshot } from './lib/gql';
import { buildServers, childEnv, GATEWAY_NODE_ARGS, installCleanup, pinningAvailable, pinSelf, startService, stopAll } from './lib/proc';
import { writeResults } from './lib/results';
import { elapsedMs, round, summarize } from './lib/stats';
import { renderTable } from './lib/table';

const CONCURRENCY = 20;
const SEED = 42;
const SIM_LATENCY_MS = 20;
const API_KEY = 'sk-chaos-0123456789abcdef';
const FORMER_RULE_FLAG = '--former-rule';
const formerRule = process.argv.includes(FORMER_RULE_FLAG);
const GATEWAY_SETTINGS = {
  DEEPSEEK_TIMEOUT_MS: '2000',
  // A hung attempt is abandoned after this and retried within the 2 s deadline.
  DEEPSEEK_HEADERS_TIMEOUT_MS: '500',
  DEEPSEEK_MAX_RETRIES: '2',
  // The defaults; --former-rule: only a run of 5 failed calls opens (a rate of 1 needs every
  // call in the window to have failed, which only an outage does).
  DEEPSEEK_BREAKER_FAILURE_RATE: formerRule ? '1' : '0.5',
  DEEPSEEK_BREAKER_WINDOW_MS: '10000',
  DEEPSEEK_BREAKER_MIN_CALLS: formerRule ? '5' : '20',
  DEEPSEEK_BREAKER_COOLDOWN_MS: '3000',
};
const CLIENT_TIMEOUT_MS = 15_000;

const RANDOM_MIX: Array<{ probability: number; fault: Fault }> = [
  { probability: 0.1, fault: { kind: 'status', status: 503 } },
  { probability: 0.02, fault: { kind: 'reset' } },
  { probability: 0.01, fault: { kind: 'hang' } },
];

/** The partial failure of the attack report: 70 % of attempts succeed. */
const PARTIAL_MIX: Array<{ probability: number; fault: Fault }> = [
  { probability: 0.2, fault: { kind: 'reset' } },
  { probability: 0.1, fault: { kind: 'status', status: 503 } },
];

interface Phase {
  name: string;
  seconds: number;
  describe: string;
  apply(sim: Awaited<ReturnType<typeof startSimulator>>): void;
}

interface Sample {
  phase: number;
  ms: number;
  ok: boolean;
  codes: string[];
}

const log = (message: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

function codesOf(result: { status: number; errors?: Array<{ extensions?: { code?: string } }> }): string[] {
  if (result.errors?.length) return result.errors.map((e) => e.extensions?.code ?? 'NO_CODE');
  return result.status === 200 ? [] : [`HTTP_${result.status}`];
}

async function main(): Promise<void> {
  const { quick } = parseArgs(process.argv.slice(2).filter((arg) => arg !== FORMER_RULE_FLAG), []);
  installCleanup();
  buildServers();
  const phases: Phase[] = [
    {
      name: 'steady',
      seconds: quick ? 10 : 40,
      describe: '10% 503, 2% reset, 1% hang',
      apply: (sim) => sim.faults.setRandom(RANDOM_MIX, SEED),
    },
    {
      name: 'partial',
      seconds: quick ? 6 : 15,
      describe: '20% reset, 10% 503',
      apply: (sim) => sim.faults.setRandom(PARTIAL_MIX, SEED),
    },
    {
      name: 'outage',
      seconds: quick ? 4 : 6,
      describe: '100% 503',
      apply: (sim) => sim.faults.setRandom([{ probability: 1, fault: { kind: 'status', status: 503 } }], SEED),
    },
    { name: 'recovery', seconds: quick ? 8 : 14, describe: 'no faults', apply: (sim) => sim.faults.clear() },
  ];

  const loadAtStart = loadavg().map((v) => v.toFixed(2));
  const pinning = pinningAvailable();
  const pin = pinning.ok && pinSelf(0);
  const pinNote = pin ? pinning.reason : `no CPU pinning (${pinning.ok ? 'taskset -p failed' : pinning.reason})`;
  log(`${quick ? 'quick' : 'full'} run${formerRule ? ' with the former trip rule (5 failed calls in a row)' : ''}; ${pinNote}`);

  // apiKeys undefined: any non-empty key is accepted.
  const sim = await startSimulator({ host: '127.0.0.1', port: 0, latencyMs: SIM_LATENCY_MS, tokenDelayMs: 0 });
  const clients: Array<{ close(): Promise<void> }> = [];
  try {
    const gateway = await startService({
      name: 'gateway',
      args: GATEWAY_NODE_ARGS,
      env: childEnv({
        NODE_ENV: 'production',
        AUTH_MODE: 'none',
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        DEEPSEEK_API_KEY: API_KEY,
        DEEPSEEK_BASE_URL: sim.url,
        OTEL_SDK_DISABLED: 'true',
        ...GATEWAY_SETTINGS,
      }),
      cpu: 1,
      pin,
      readyMsg: 'gateway listening',
    });
    log(`gateway at ${gateway.url} (pid ${gateway.pid}), simulator at ${sim.url} (in-process, latency ${SIM_LATENCY_MS} ms)`);

    const load = new GraphQLClient(gateway.url, { connections: CONCURRENCY, timeoutMs: CLIENT_TIMEOUT_MS });
    const status = new GraphQLClient(gateway.url, { timeoutMs: CLIENT_TIMEOUT_MS });
    const ready = new Pool(new URL(gateway.url).origin, { connections: 1, headersTimeout: 5000, bodyTimeout: 5000 });
    clients.push(load, status, ready);

    // Sanity check before any fault: one request must succeed.
    const probe = await load.query<CompletionData>(COMPLETION_BYPASS_QUERY, { prompt: 'chaos probe' });
    if (!probe.data?.completion) throw new Error(`probe failed: ${JSON.stringify(probe.errors)}`);

    const snapshots: Array<{ gateway: UpstreamSnapshot; simChat: number; simByStatus: Record<number, number> }> = [];
    // The gateway keeps its last 50 transitions: gathered at every snapshot and every 2 s.
    const seenTransitions = new Map<string, { to: string; at: string }>();
    const gather = (gateway: UpstreamSnapshot) => {
      for (const t of gateway.circuitTransitions) seenTransitions.set(`${t.to}@${t.at}`, t);
    };
    const snapshot = async () => {
      // The simulator's counters first: the status query itself is no chat request.
      const simChat = sim.counters.byPath['/chat/completions'] ?? 0;
      const simByStatus = sim.counters.byStatus;
      const gateway = await upstreamStatus(status);
      gather(gateway);
      snapshots.push({ gateway, simChat, simByStatus });
    };
    const phaseStarts: number[] = [];
    const readiness = phases.map(() => ({ ready: 0, notReady: 0 }));

    const samples: Sample[] = [];
    let phase = 0;
    let running = true;
    const runStart = Date.now();
    const t0 = process.hrtime.bigint();
    let sequence = 0;
    const tag = Date.now().toString(36);

    const worker = async (): Promise<void> => {
      while (running) {
        const myPhase = phase;
        const prompt = `chaos ${tag} ${sequence++}`;
        const start = process.hrtime.bigint();
        try {
          const result = await load.query<CompletionData>(COMPLETION_BYPASS_QUERY, { prompt });
          const ok = Boolean(result.data?.completion) && !result.errors?.length;
          samples.push({ phase: myPhase, ms: elapsedMs(start), ok, codes: codesOf(result) });
        } catch (error) {
          const code = (error as { code?: string }).code ?? (error as Error).name;
          samples.push({ phase: myPhase, ms: elapsedMs(start), ok: false, codes: [`CLIENT_${code}`] });
        }
      }
    };
    const transitionWatch = async (): Promise<void> => {
      while (running) {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        gather(await upstreamStatus(status));
      }
    };
    const readinessProbe = async (): Promise<void> => {
      while (running) {
        const myPhase = phase;
        try {
          const response = await ready.request({ method: 'GET', path: '/readyz' });
          await response.body.dump();
          if (response.statusCode === 200) readiness[myPhase].ready += 1;
          else readiness[myPhase].notReady += 1;
        } catch {
          readiness[myPhase].notReady += 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };

    await snapshot();
    phases[0].apply(sim);
    phaseStarts.push(Date.now());
    log(`phase 1/${phases.length} ${phases[0].name} (${phases[0].seconds}s): ${phases[0].describe}`);
    const workers = [...Array.from({ length: CONCURRENCY }, worker), readinessProbe(), transitionWatch()];
    for (let i = 0; i < phases.length; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, phases[i].seconds * 1000));
      await snapshot();
      if (i + 1 < phases.length) {
        phase = i + 1;
        phases[phase].apply(sim);
        phaseStarts.push(Date.now());
        log(`phase ${phase + 1}/${phases.length} ${phases[phase].name} (${phases[phase].seconds}s): ${phases[phase].describe}`);
      }
    }
    running = false;
    sim.faults.clear();
    await Promise.all(workers);
    const loadSeconds = elapsedMs(t0) / 1000;
    await snapshot();
    const final = snapshots[snapshots.length - 1];
    log(`load done after ${loadSeconds.toFixed(1)} s; stopping the gateway`);
    await gateway.stop();

    // ---- report ----
    const summarizePhase = (selected: Sample[]) => {
      const ok = selected.filter((s) => s.ok);
      const all = summarize(selected.map((s) => s.ms));
      const good = summarize(ok.map((s) => s.ms));
      const codes: Record<string, number> = {};
      for (const s of selected) for (const code of s.codes) codes[code] = (codes[code] ?? 0) + 1;
      return { requests: selected.length, succeeded: ok.length, successRate: selected.length ? ok.length / selected.length : Number.NaN, latencyAll: all, latencyOk: good, codes };
    };
    const transitions = [...seenTransitions.values()]
      .filter((t) => Date.parse(t.at) >= runStart)
      .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
      .map((t) => ({ to: t.to, at: t.at, atSeconds: round((Date.parse(t.at) - runStart) / 1000, 2) }));
    const perPhase = phases.map((p, i) => {
      const before = snapshots[i];
      const from = phaseStarts[i];
      const until = phaseStarts[i + 1] ?? Number.POSITIVE_INFINITY;
      // Breaker transitions in this phase, in seconds from its start.
      const breaker = transitions
        .filter((t) => Date.parse(t.at) >= from && Date.parse(t.at) < until)
        .map((t) => ({ to: t.to, afterSeconds: round((Date.parse(t.at) - from) / 1000, 2) }));
      // The last phase also owns the requests that finished after the load stopped.
      const after = i === phases.length - 1 ? final : snapshots[i + 1];
      const g = (f: (s: UpstreamSnapshot) => number) => f(after.gateway) - f(before.gateway);
      const calls = g((s) => s.calls);
      const shortCircuited = g((s) => s.shortCircuited);
      const overloaded = g((s) => s.rejectedOverloaded);
      const simChat = after.simChat - before.simChat;
      return {
        phase: p.name,
        seconds: p.seconds,
        faults: p.describe,
        ...summarizePhase(samples.filter((s) => s.phase === i)),
        upstream: {
          calls,
          failures: g((s) => s.failures),
          retries: g((s) => s.retries),
          shortCircuited,
          rejectedOverloaded: overloaded,
          simulatorChatRequests: simChat,
          attemptsPerDispatchedCall: calls - shortCircuited - overloaded > 0 ? simChat / (calls - shortCircuited - overloaded) : Number.NaN,
        },
        readyz: readiness[i],
        breakerTransitions: breaker,
      };
    });
    /** A phase's transitions, short: each one while few, else counts and the first OPEN. */
    const describeTransitions = (list: Array<{ to: string; afterSeconds: number }>): string => {
      if (list.length === 0) return 'none';
      if (list.length <= 4) return list.map((t) => `${t.to} +${t.afterSeconds.toFixed(2)}s`).join(', ');
      const counts = ['OPEN', 'HALF_OPEN', 'CLOSED'].map((to) => `${to}×${list.filter((t) => t.to === to).length}`).join(' ');
      const firstOpen = list.find((t) => t.to === 'OPEN');
      return `${counts}${firstOpen ? `, first OPEN +${firstOpen.afterSeconds.toFixed(2)}s` : ''}`;
    };
    const total = summarizePhase(samples);
    const first = snapshots[0];
    const totals = {
      calls: final.gateway.calls - first.gateway.calls,
      failures: final.gateway.failures - first.gateway.failures,
      retries: final.gateway.retries - first.gateway.retries,
      shortCircuited: final.gateway.shortCircuited - first.gateway.shortCircuited,
      rejectedOverloaded: final.gateway.rejectedOverloaded - first.gateway.rejectedOverloaded,
      simulatorChatRequests: final.simChat - first.simChat,
    };
    const dispatched = totals.calls - totals.shortCircuited - totals.rejectedOverloaded;
    const simStatuses: Record<string, number> = {};
    for (const [code, count] of Object.entries(final.simByStatus)) {
      simStatuses[code] = count - (first.simByStatus[Number(code)] ?? 0);
    }

    const allCodes = [...new Set(perPhase.flatMap((p) => Object.keys(p.codes)))].sort();
    const tables: string[] = [];
    const ms = (v: number) => round(v, 1);
    tables.push(
      renderTable(
        `chaos: c=${CONCURRENCY} closed-loop clients, distinct prompts with cache: BYPASS, simulator latency ${SIM_LATENCY_MS} ms; gateway ` +
          `DEEPSEEK_TIMEOUT_MS=${GATEWAY_SETTINGS.DEEPSEEK_TIMEOUT_MS} HEADERS_TIMEOUT_MS=${GATEWAY_SETTINGS.DEEPSEEK_HEADERS_TIMEOUT_MS} MAX_RETRIES=${GATEWAY_SETTINGS.DEEPSEEK_MAX_RETRIES} ` +
          `BREAKER_FAILURE_RATE=${GATEWAY_SETTINGS.DEEPSEEK_BREAKER_FAILURE_RATE} BREAKER_WINDOW_MS=${GATEWAY_SETTINGS.DEEPSEEK_BREAKER_WINDOW_MS} ` +
          `BREAKER_MIN_CALLS=${GATEWAY_SETTINGS.DEEPSEEK_BREAKER_MIN_CALLS} BREAKER_COOLDOWN_MS=${GATEWAY_SETTINGS.DEEPSEEK_BREAKER_COOLDOWN_MS}` +
          `${formerRule ? ' (the former rule: 5 failed calls in a row)' : ''}; ${pinNote}`,
        ['phase', 'faults', 's', 'requests', 'success %', 'p50 ms (all)', 'p99 ms (all)', 'p50 ms (ok)', 'p99 ms (ok)', 'upstream calls', 'sim chat reqs', 'attempts/call', 'retries', 'short-circuited', '/readyz 503 samples', 'breaker transitions (from phase start)'],
        [
          ...perPhase.map((p) => [
            p.phase,
            p.faults,
            p.seconds,
            p.requests,
            round(100 * p.successRate, 2),
            ms(p.latencyAll.p50),
            ms(p.latencyAll.p99),
            ms(p.latencyOk.p50),
            ms(p.latencyOk.p99),
            p.upstream.calls,
            p.upstream.simulatorChatRequests,
            round(p.upstream.attemptsPerDispatchedCall, 3),
            p.upstream.retries,
            p.upstream.shortCircuited,
            `${p.readyz.notReady}/${p.readyz.ready + p.readyz.notReady}`,
            describeTransitions(p.breakerTransitions),
          ]),
          [
            'total',
            '',
            phases.reduce((s, p) => s + p.seconds, 0),
            total.requests,
            round(100 * total.successRate, 2),
            ms(total.latencyAll.p50),
            ms(total.latencyAll.p99),
            ms(total.latencyOk.p50),
            ms(total.latencyOk.p99),
            totals.calls,
            totals.simulatorChatRequests,
            round(dispatched > 0 ? totals.simulatorChatRequests / dispatched : Number.NaN, 3),
            totals.retries,
            totals.shortCircuited,
            `${readiness.reduce((s, r) => s + r.notReady, 0)}/${readiness.reduce((s, r) => s + r.ready + r.notReady, 0)}`,
            `${transitions.length}`,
          ],
        ],
      ),
    );
    tables.push(
      renderTable(
        'error codes (GraphQL errors[].extensions.code; HTTP_/CLIENT_ = no GraphQL answer)',
        ['code', ...phases.map((p) => p.name), 'total'],
        allCodes.map((code) => [code, ...perPhase.map((p) => p.codes[code] ?? 0), total.codes[code] ?? 0]),
      ),
    );
    tables.push(
      `simulator answers by status (whole run): ${Object.entries(simStatuses).map(([k, v]) => `${k}: ${v}`).join(', ')} ` +
        `(resets and hangs send no status)\n` +
        `attempts/call = simulator chat requests / (gateway upstream calls - short-circuited - rejected overloaded); per phase it is approximate:\n` +
        `  a call is counted where it starts, its retries where they happen (calls in flight when the outage starts retry into it)\n` +
        `breaker transitions (s after load start): ${transitions.length ? transitions.map((t) => `${t.to} @ ${t.atSeconds}`).join(', ') : 'none'}\n` +
        `gateway log lines by level: ${Object.entries(gateway.levels).map(([k, v]) => `${k}: ${v}`).join(', ')}\n` +
        `load average (1/5/15 min) at start ${loadAtStart.join(' ')}, at end ${loadavg().map((v) => v.toFixed(2)).join(' ')} (2 CPUs)`,
    );

    const file = writeResults('chaos', {
      startedAt: new Date(runStart).toISOString(),
      quick,
      formerRule,
      pinning: pinNote,
      settings: { concurrency: CONCURRENCY, seed: SEED, simulatorLatencyMs: SIM_LATENCY_MS, gateway: GATEWAY_SETTINGS, randomMix: RANDOM_MIX, partialMix: PARTIAL_MIX },
      loadSeconds: round(loadSeconds, 2),
      phases: perPhase,
      total: { ...total, upstream: totals, attemptsPerDispatchedCall: dispatched > 0 ? totals.simulatorChatRequests / dispatched : null },
      simulatorStatuses: simStatuses,
      circuitTransitions: transitions,
      gatewayLogLevels: gateway.levels,
      gatewayLogMessages: gateway.messages,
    });
    process.stdout.write(`${tables.join('\n')}\n\nresults: ${file}\n`);
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stopAll();
    await sim.close();
  }
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    process.stderr.write(`chaos failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await stopAll();
    process.exit(1);
  },
);
