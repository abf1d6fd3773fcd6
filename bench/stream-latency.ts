/**
 * Time to the first streamed chunk through each of the gateway's streaming transports
 * (graphql-ws over WebSocket, Apollo's multipart protocol and GraphQL over SSE, both POSTed
 * to /graphql) against the simulator's own first token (a direct SSE `POST
 * /chat/completions` with undici), interleaved in rotating order, sequential, on loopback
 * only. Prints p50/p99/mean of each and its difference from the direct one, which is what
 * the gateway adds before a frontend sees the first token: the transport, GraphQL
 * execution, normalisation and key hashing, the cache policy (BYPASS here, like row b of
 * bench.ts), the stream hub, the transport's policies and the extra loopback hop. The same
 * stream through bench/bare-hop.ts (the simulator's SSE bytes passed on unparsed, on the
 * gateway's CPU) measures what a hop alone adds, so the gateway's own share is read
 * against it in the same run.
 *
 *   npm run bench:stream                           # 200 samples each way, about a minute
 *   npm run bench:stream -- --samples=50           # quicker
 *   npm run bench:stream -- --warmup=400           # a longer warm-up (default 20 each way)
 *
 * The gateway, the bare hop and the simulator are child processes (bench/lib/proc.ts), so
 * none shares this process's event loop; with taskset and 2+ CPUs the gateway and the hop are pinned to CPU 1 and
 * this process and the simulator to CPU 0. Bounded: a run longer than 3 minutes is
 * stopped, and every child is stopped on exit, error or Ctrl-C.
 */
import { cpus, loadavg } from 'node:os';
import { createClient, type Client } from 'graphql-ws';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { buildServers, childEnv, GATEWAY_NODE_ARGS, installCleanup, limitRun, pinningAvailable, pinSelf, referenceNodeArgs, startService, stopAll } from './lib/proc';
import { countArg } from './lib/args';
import { elapsedMs, median, summarize, type Summary } from './lib/stats';

const API_KEY = 'sk-bench-stream-latency-0000000000000000';
/** Queue time before the first token, and the time between tokens, in the simulator. */
const SIM_LATENCY_MS = 20;
const SIM_TOKEN_DELAY_MS = 5;
/** Short answers: only the first token is measured, and the run stays short. */
const MAX_TOKENS = 4;

const RUN_LIMIT_MS = 180_000;
/** Issue 14's target: what the gateway may add to the upstream's first token. */
const TARGET_ADDED_MS = 1;

const STREAM = `subscription ($input: CompletionInput!) {
  completionStream(input: $input) { index delta reasoningDelta finishReason cached }
}`;
const MULTIPART_ACCEPT = 'multipart/mixed;subscriptionSpec="1.0", application/json';

const log = (message: string) => process.stderr.write(`[stream-latency ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** One stream's time to first chunk (ms), and when it was sent (the monotonic clock, ns). */
interface FirstChunk {
  ms: number;
  start: bigint;
}

/** One subscription: ms until its first chunk, after which it is read to the end. */
function viaGateway(client: Client, prompt: string): Promise<FirstChunk> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let first: number | undefined;
    let finished = false;
    client.subscribe<{ completionStream: { finishReason: string | null; cached: boolean } }>(
      { query: STREAM, variables: variables(prompt) },
      {
        next: (result) => {
          if (result.errors?.length) {
            reject(new Error(`gateway stream failed: ${JSON.stringify(result.errors)}`));
            return;
          }
          first ??= elapsedMs(start);
          if (result.data?.completionStream.cached) reject(new Error('expected an upstream stream, got a cached replay'));
          if (result.data?.completionStream.finishReason) finished = true;
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => {
          if (first === undefined || !finished) reject(new Error('gateway stream ended without chunks or finish reason'));
          else resolve({ ms: first, start });
        },
      },
    );
  });
}

/** The subscription's variables for `prompt`: an upstream stream every time (BYPASS). */
function variables(prompt: string): Record<string, unknown> {
  return { input: { prompt, thinking: false, maxTokens: MAX_TOKENS, cache: 'BYPASS' } };
}

/**
 * One subscription POSTed to the gateway's /graphql over HTTP (multipart or SSE, by
 * `accept`) on a keep-alive connection: ms until the first part or event carrying a chunk,
 * after which it is read to the end.
 */
async function viaHttp(pool: Pool, accept: string, prompt: string): Promise<FirstChunk> {
  const start = process.hrtime.bigint();
  const response = await pool.request({
    method: 'POST',
    path: '/graphql',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify({ query: STREAM, variables: variables(prompt) }),
  });
  if (response.statusCode !== 200) throw new Error(`gateway answered ${response.statusCode}: ${await response.body.text()}`);
  let first: number | undefined;
  let text = '';
  for await (const piece of response.body) {
    text += (piece as Buffer).toString('utf8');
    // A chunk's JSON names its field, in a multipart part and an SSE `next` event alike.
    if (first === undefined && text.includes('"completionStream"')) first = elapsedMs(start);
  }
  if (first === undefined || !/"finishReason":"[A-Z_]+"/.test(text)) throw new Error(`gateway stream (${accept}) ended without chunks or finish reason`);
  if (text.includes('"errors"')) throw new Error(`gateway stream (${accept}) failed: ${text.slice(0, 500)}`);
  return { ms: first, start };
}

/**
 * The same request straight to the simulator: ms until the first SSE event carrying text
 * (the gateway's first chunk is also the first delta with text), then read to `[DONE]`.
 */
function direct(pool: Pool, prompt: string): Promise<FirstChunk> {
  return firstToken(pool, {
    path: '/chat/completions',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({
      model: 'deepseek-flash',
      messages: [{ role: 'user', content: prompt }],
      thinking: { type: 'disabled' },
      max_tokens: MAX_TOKENS,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
}

/**
 * The same stream through bench/bare-hop.ts, which passes the simulator's SSE bytes on
 * unparsed: what any hop adds on this machine (an extra loopback connection, two more
 * processes' wake-ups), the reference the gateway's own share is read against.
 */
function viaBareHop(pool: Pool, prompt: string): Promise<FirstChunk> {
  return firstToken(pool, {
    path: '/',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ prompt, stream: true, maxTokens: MAX_TOKENS }),
  });
}

/** ms until the first DeepSeek SSE event carrying text, then the stream read to `[DONE]`. */
async function firstToken(pool: Pool, request: { path: string; headers: Record<string, string>; body: string }): Promise<FirstChunk> {
  const start = process.hrtime.bigint();
  const response = await pool.request({ method: 'POST', ...request });
  if (response.statusCode !== 200) throw new Error(`${request.path} answered ${response.statusCode}: ${await response.body.text()}`);
  let first: number | undefined;
  let buffer = '';
  let done = false;
  for await (const piece of response.body) {
    buffer += (piece as Buffer).toString('utf8');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ')) continue; // keep-alive comments
      const data = event.slice('data: '.length);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      if (first === undefined) {
        const delta = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: string; reasoning_content?: string } }> }).choices?.[0]
          ?.delta;
        if (delta?.content || delta?.reasoning_content) first = elapsedMs(start);
      }
    }
  }
  if (first === undefined || !done) throw new Error(`${request.path} stream ended without text or [DONE]`);
  return { ms: first, start };
}

function row(name: string, s: Summary): string {
  const f = (n: number) => n.toFixed(2).padStart(8);
  return `${name.padEnd(40)} ${String(s.count).padStart(5)} ${f(s.p50)} ${f(s.p99)} ${f(s.mean)} ${f(s.min)} ${f(s.max)}`;
}

async function main(): Promise<void> {
  const samples = countArg('samples', 200, 1, 5000);
  // Streams each way before measuring, so the JIT has compiled the path.
  const warmup = countArg('warmup', 20, 0, 5000);
  installCleanup();
  buildServers();
  const cancelLimit = limitRun(RUN_LIMIT_MS, log);

  const pinning = pinningAvailable();
  const pin = pinning.ok && pinSelf(0);
  log(pin ? pinning.reason : `no CPU pinning (${pinning.ok ? 'taskset -p failed' : pinning.reason})`);
  // Other work on a shared machine shows up as p99 outliers: say how busy it was.
  log(`load average at start: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);

  let client: Client | undefined;
  let pool: Pool | undefined;
  let gatewayPool: Pool | undefined;
  let hopPool: Pool | undefined;
  try {
    const sim = await startService({
      name: 'simulator',
      args: ['--import', 'tsx', 'bench/sim-server.ts'],
      env: childEnv({
        HOST: '127.0.0.1',
        SIMULATOR_PORT: '0',
        SIMULATOR_LATENCY_MS: String(SIM_LATENCY_MS),
        SIMULATOR_TOKEN_DELAY_MS: String(SIM_TOKEN_DELAY_MS),
        SIMULATOR_TIMINGS: '1',
      }),
      cpu: 0,
      pin,
      readyMsg: 'simulator listening',
      ipc: true,
    });
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
      }),
      cpu: 1,
      pin,
      readyMsg: 'gateway listening',
    });
    // The reference hop, on the gateway's CPU (one way runs at a time, so they never compete).
    const hop = await startService({
      name: 'bare hop',
      args: referenceNodeArgs('bare-hop'),
      env: childEnv({ NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', UPSTREAM_URL: sim.url, UPSTREAM_KEY: API_KEY, UPSTREAM_CONNECTIONS: '4' }),
      cpu: 1,
      pin,
      readyMsg: 'bare hop listening',
    });
    log(`simulator ${sim.url} (latency ${SIM_LATENCY_MS} ms, token delay ${SIM_TOKEN_DELAY_MS} ms), gateway ${gateway.url}, bare hop ${hop.url}`);

    // One WebSocket for the whole run, opened before measuring (as a frontend keeps one open).
    client = createClient({ url: gateway.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 });
    await new Promise<void>((resolve, reject) => {
      const offConnected = client!.on('connected', () => {
        offConnected();
        resolve();
      });
      client!.on('error', reject);
    });
    // One keep-alive connection, as the gateway's pool keeps them.
    pool = new Pool(sim.url, { connections: 1 });
    // One keep-alive connection to the gateway for the HTTP transports (a stream per request).
    gatewayPool = new Pool(new URL(gateway.url).origin, { connections: 1 });
    hopPool = new Pool(new URL(hop.url).origin, { connections: 1 });

    // Per sample also the two halves of the time to first chunk, from the simulator's timings:
    // until the upstream request arrived, and from the first text leaving the simulator.
    type Way = { name: string; run: (prompt: string) => Promise<FirstChunk>; samples: number[]; before: number[]; after: number[] };
    const way = (name: string, run: Way['run']): Way => ({ name, run, samples: [], before: [], after: [] });
    const ways: Way[] = [
      way('via gateway, graphql-ws', (prompt) => viaGateway(client!, prompt)),
      way('via gateway, multipart (POST /graphql)', (prompt) => viaHttp(gatewayPool!, MULTIPART_ACCEPT, prompt)),
      way('via gateway, SSE (POST /graphql)', (prompt) => viaHttp(gatewayPool!, 'text/event-stream', prompt)),
      way('bare hop (SSE bytes passed on)', (prompt) => viaBareHop(hopPool!, prompt)),
      way('simulator first token (undici SSE)', (prompt) => direct(pool!, prompt)),
    ];
    const gatewayWays = ways.slice(0, 3);

    const tag = Date.now().toString(36);
    log(`warm-up: ${warmup} each way`);
    for (let i = 0; i < warmup; i += 1) {
      for (const [w, way] of ways.entries()) await way.run(`warm ${tag} ${w} ${i}`);
    }
    log(`measuring: ${samples} sequential streams each way, interleaved`);
    for (let i = 0; i < samples; i += 1) {
      // Rotate which goes first so drift on the shared machine hits every way alike.
      for (let k = 0; k < ways.length; k += 1) {
        const w = (i + k) % ways.length;
        const way = ways[w]!;
        const prompt = `ttfc ${tag} ${w} ${i}`;
        const sample = await way.run(prompt);
        way.samples.push(sample.ms);
        const timing = await sim.ask<{ receivedUs: number; firstTextUs?: number } | null>({ cmd: 'timing', prompt });
        if (!timing?.firstTextUs) throw new Error(`the simulator has no timing for "${prompt}"`);
        const startUs = Number(sample.start / 1000n);
        way.before.push((timing.receivedUs - startUs) / 1000);
        way.after.push(sample.ms - (timing.firstTextUs - startUs) / 1000);
      }
    }
    const direct_ = summarize(ways.at(-1)!.samples);
    const minus = (g: Summary, d: Summary): Summary => ({
      count: g.count,
      p50: g.p50 - d.p50,
      p90: g.p90 - d.p90,
      p99: g.p99 - d.p99,
      mean: g.mean - d.mean,
      min: g.min - d.min,
      max: g.max - d.max,
    });
    const header = `${'time to first chunk (ms)'.padEnd(40)} ${'n'.padStart(5)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'mean'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`;
    const lines = ['', header];
    for (const way of ways) lines.push(row(way.name, summarize(way.samples)));
    const hop_ = summarize(ways.at(-2)!.samples);
    lines.push('', 'added on the way (way − simulator first token):');
    for (const way of ways.slice(0, -1)) lines.push(row(`  ${way.name.replace('via gateway, ', '')}`, minus(summarize(way.samples), direct_)));
    lines.push('', "the gateway's own share (way − bare hop):");
    for (const way of gatewayWays) lines.push(row(`  ${way.name.replace('via gateway, ', '')}`, minus(summarize(way.samples), hop_)));
    // Each way's two halves at p50; the simulator's own (the direct way) is what any client pays.
    const halves = (w: Way) => ({ before: median(w.before), after: median(w.after) });
    const direct50 = halves(ways.at(-1)!);
    const hop50 = halves(ways.at(-2)!);
    const ms = (n: number) => n.toFixed(2).padStart(8);
    lines.push(
      '',
      'where it is added, p50 (ms): until the upstream request arrives | after the first text leaves the simulator',
      `${''.padEnd(40)} ${'before'.padStart(8)} ${'after'.padStart(8)} ${'+before'.padStart(8)} ${'+after'.padStart(8)}   (+: over the bare hop)`,
    );
    for (const w of ways) {
      const h = halves(w);
      const over = gatewayWays.includes(w) ? `${ms(h.before - hop50.before)} ${ms(h.after - hop50.after)}` : '';
      lines.push(`  ${w.name.replace('via gateway, ', '').padEnd(38)} ${ms(h.before)} ${ms(h.after)} ${over}`);
    }
    lines.push(`  (the simulator itself: ${direct50.before.toFixed(2)} ms to receive a request, ${direct50.after.toFixed(2)} ms from its first text to undici's reader)`);
    lines.push('', `target (issue 14): time to first chunk within +${TARGET_ADDED_MS} ms of the upstream's first token, at p50 (a bare hop adds +${(hop_.p50 - direct_.p50).toFixed(2)} ms):`);
    for (const way of gatewayWays) {
      const added = summarize(way.samples).p50 - direct_.p50;
      const own = summarize(way.samples).p50 - hop_.p50;
      lines.push(`  ${way.name.replace('via gateway, ', '').padEnd(38)} +${added.toFixed(2)} ms (+${own.toFixed(2)} over the bare hop): ${added <= TARGET_ADDED_MS ? 'met' : 'not met'}`);
    }
    lines.push(
      '',
      `simulator: ${SIM_LATENCY_MS} ms queue + ${SIM_TOKEN_DELAY_MS} ms to the first text token; cache BYPASS, thinking off, maxTokens ${MAX_TOKENS}.`,
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}.`,
      '',
    );
    process.stdout.write(lines.join('\n'));
  } finally {
    await client?.dispose();
    await pool?.close();
    await gatewayPool?.close();
    await hopPool?.close();
    await stopAll();
    cancelLimit();
  }
}

main().catch(async (error: unknown) => {
  log(`failed: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll();
  process.exit(1);
});
