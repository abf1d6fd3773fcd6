import autocannon from 'autocannon';
import { cpuTimeMs } from './proc';
import { Samples, summarize, type Summary } from './stats';

export interface LoadOptions {
  url: string;
  /** POST (the default, with `body`) or GET (the operation in `url`'s query string). */
  method?: 'GET' | 'POST';
  body?: string;
  /** A body per request instead of `body` (e.g. a distinct prompt each time, for cache misses). */
  bodies?: () => string;
  connections: number;
  durationS: number;
  warmupS: number;
  /** PID of the server, to measure its CPU time per request. */
  serverPid?: number;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  requests: number;
  reqPerSec: number;
  /** From the 'response' events (µs precision), all responses. */
  latency: Summary;
  /** autocannon's own figures (1 ms resolution histogram), for reference. */
  autocannon: { reqPerSecAvg: number; p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Server CPU time per request (µs), from /proc; undefined when unavailable. */
  serverCpuUsPerReq?: number;
  /** Server CPU use during the run (1.0 = one core busy). */
  serverCpuShare?: number;
  /** Response bytes (headers and body) per request, from autocannon's throughput. */
  bytesPerResponse: number;
  /** `measureInterleaved` only: each slice's responses, p50 and p99 (ms) and server CPU per response (µs), in order. */
  slices?: Array<{ responses: number; p50Ms: number; p99Ms: number; cpuUsPerResponse?: number }>;
}

function run(options: autocannon.Options, onResponse?: (ms: number) => void): Promise<autocannon.Result> {
  const instance = autocannon(options);
  if (onResponse) {
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => onResponse(responseTime));
  }
  return new Promise((resolve, reject) => instance.then(resolve, reject));
}

/** autocannon's options for a load (without its duration). */
function autocannonOptions(options: LoadOptions): autocannon.Options {
  return {
    url: options.url,
    method: options.method ?? 'POST',
    headers: options.method === 'GET' ? { ...options.headers } : { 'content-type': 'application/json', ...options.headers },
    body: options.method === 'GET' ? undefined : options.body,
    connections: options.connections,
    pipelining: 1,
    timeout: 10,
    ...(options.bodies
      ? { requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, body: options.bodies!() }) }] }
      : {}),
  };
}

/** A warm-up run (discarded), then the measured run of `durationS` seconds. */
export async function measure(options: LoadOptions): Promise<LoadResult> {
  if (options.warmupS > 0) await run({ ...autocannonOptions(options), duration: options.warmupS });
  const samples = new Samples();
  const { result, wallMs, cpuMs } = await measureSlice(options, options.durationS, (ms) => samples.push(ms));
  const requests = samples.length;
  return {
    connections: options.connections,
    durationS: options.durationS,
    requests,
    reqPerSec: requests / (wallMs / 1000),
    latency: summarize(samples.values()),
    autocannon: { reqPerSecAvg: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    serverCpuUsPerReq: cpuMs !== undefined && requests > 0 ? (cpuMs * 1000) / requests : undefined,
    serverCpuShare: cpuMs !== undefined ? cpuMs / wallMs : undefined,
    bytesPerResponse: requests > 0 ? result.throughput.total / requests : 0,
  };
}

/** The unmeasured start of each slice of `measureInterleaved` (seconds). */
const SLICE_SETTLE_S = 0.5;

/**
 * `measure` for two or more servers at once, in alternating slices: each is warmed up on its
 * own, then each measured for `durationS / slices` seconds in turn, `slices` times, the order
 * reversed every other round (A B, B A, A B, …). What a shared machine does to one slice it
 * does to its neighbours, so a ratio between the servers drifts far less with the machine's
 * load than one between two blocks measured a minute apart. Latency percentiles are over
 * all of a server's samples; CPU per request over all its slices; `autocannon`'s own figures
 * (and its error counts) are the means (sums) of its slices', settling time included. Each
 * slice first runs `SLICE_SETTLE_S` unmeasured: its connections are new and its server was
 * idle, and at c=100 the first request of each of 4 × 100 connections would otherwise make
 * the p99 a measure of connection set-up.
 */
export async function measureInterleaved(sides: readonly LoadOptions[], slices: number): Promise<LoadResult[]> {
  const totals = sides.map(() => ({ samples: new Samples(), cpuMs: 0, cpuKnown: true, wallMs: 0, non2xx: 0, errors: 0, timeouts: 0, bytes: 0, responses: 0, slices: [] as NonNullable<LoadResult['slices']>, autocannon: { reqPerSecAvg: 0, p50: 0, p99: 0 } }));
  for (const side of sides) {
    if (side.warmupS > 0) await run({ ...autocannonOptions(side), duration: side.warmupS });
  }
  for (let round = 0; round < slices; round += 1) {
    const order = sides.map((_, index) => index);
    if (round % 2 === 1) order.reverse();
    for (const index of order) {
      const side = sides[index];
      const total = totals[index];
      const sliceSamples = new Samples();
      const slice = await measureSlice(side, side.durationS / slices, (ms) => {
        total.samples.push(ms);
        sliceSamples.push(ms);
      }, SLICE_SETTLE_S);
      const sliceLatency = summarize(sliceSamples.values());
      total.slices.push({
        responses: sliceSamples.length,
        p50Ms: sliceLatency.p50,
        p99Ms: sliceLatency.p99,
        cpuUsPerResponse: slice.cpuMs !== undefined && sliceSamples.length > 0 ? (slice.cpuMs * 1000) / sliceSamples.length : undefined,
      });
      if (slice.cpuMs === undefined) total.cpuKnown = false;
      else total.cpuMs += slice.cpuMs;
      total.wallMs += slice.wallMs;
      total.non2xx += slice.result.non2xx;
      total.errors += slice.result.errors;
      total.timeouts += slice.result.timeouts;
      total.bytes += slice.result.throughput.total;
      total.responses += slice.result.requests.total;
      total.autocannon.reqPerSecAvg += slice.result.requests.average / slices;
      total.autocannon.p50 += slice.result.latency.p50 / slices;
      total.autocannon.p99 += slice.result.latency.p99 / slices;
    }
  }
  return sides.map((side, index) => {
    const total = totals[index];
    const requests = total.samples.length;
    const latency = summarize(total.samples.values());
    return {
      connections: side.connections,
      durationS: side.durationS,
      requests,
      reqPerSec: requests / (total.wallMs / 1000),
      latency,
      autocannon: total.autocannon,
      non2xx: total.non2xx,
      errors: total.errors,
      timeouts: total.timeouts,
      serverCpuUsPerReq: total.cpuKnown && side.serverPid && requests > 0 ? (total.cpuMs * 1000) / requests : undefined,
      serverCpuShare: total.cpuKnown && side.serverPid ? total.cpuMs / total.wallMs : undefined,
      bytesPerResponse: total.responses > 0 ? total.bytes / total.responses : 0,
      slices: total.slices,
    };
  });
}

/**
 * One measured autocannon run of `durationS`: its result, wall time and the server's CPU time.
 * With `settleS`, the run lasts that much longer and its first `settleS` seconds are not
 * measured (no responses, no CPU): a slice of `measureInterleaved` opens its connections
 * anew and finds its server idle since its previous slice.
 */
async function measureSlice(options: LoadOptions, durationS: number, onResponse: (ms: number) => void, settleS = 0): Promise<{ result: autocannon.Result; wallMs: number; cpuMs?: number }> {
  let measuring = settleS === 0;
  let cpuBefore: number | undefined;
  let started = process.hrtime.bigint();
  const begin = (): void => {
    cpuBefore = options.serverPid ? cpuTimeMs(options.serverPid) : undefined;
    started = process.hrtime.bigint();
    measuring = true;
  };
  if (measuring) begin();
  const settled = measuring ? undefined : setTimeout(begin, settleS * 1000);
  const result = await run({ ...autocannonOptions(options), duration: durationS + settleS }, (ms) => {
    if (measuring) onResponse(ms);
  });
  clearTimeout(settled);
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpuAfter = options.serverPid ? cpuTimeMs(options.serverPid) : undefined;
  return { result, wallMs, cpuMs: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined };
}

/** One second of `perSecondLoad`. */
export interface Second {
  responses: number;
  /** Median latency of the second's responses (ms); NaN when none came. */
  p50Ms: number;
  /** The server's CPU time in that second over its responses (µs); NaN without a PID or responses. */
  cpuUsPerResponse: number;
}

/**
 * Responses, their median latency and the server's CPU per response in each whole second
 * from the first request on, for a server that has just become ready (no warm-up run: the
 * first seconds are the point). `bodies` gives each request its own body (cache misses).
 */
export async function perSecondLoad(options: {
  url: string;
  body?: string;
  bodies?: () => string;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  serverPid?: number;
}): Promise<Second[]> {
  const latencies: number[][] = Array.from({ length: options.durationS }, () => []);
  const cpuAt: number[] = [];
  const readCpu = (): number => (options.serverPid ? (cpuTimeMs(options.serverPid) ?? Number.NaN) : Number.NaN);
  const started = performance.now();
  cpuAt.push(readCpu());
  // The server's CPU time at each second's end (a timer a few ms late at most: noise next to a second).
  const sampler = setInterval(() => {
    if (cpuAt.length <= options.durationS) cpuAt.push(readCpu());
  }, 1000);
  try {
    await run(
      {
        url: options.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
        body: options.body,
        connections: options.connections,
        pipelining: 1,
        timeout: 10,
        duration: options.durationS,
        ...(options.bodies
          ? { requests: [{ setupRequest: (request: autocannon.Request) => ({ ...request, body: options.bodies!() }) }] }
          : {}),
      },
      (ms) => {
        const second = Math.floor((performance.now() - started) / 1000);
        if (second < latencies.length) latencies[second]!.push(ms);
      },
    );
  } finally {
    clearInterval(sampler);
  }
  return latencies.map((values, second) => {
    const sorted = [...values].sort((a, b) => a - b);
    const cpuMs = (cpuAt[second + 1] ?? Number.NaN) - (cpuAt[second] ?? Number.NaN);
    return {
      responses: values.length,
      p50Ms: sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) / 2)]! : Number.NaN,
      cpuUsPerResponse: values.length > 0 ? (cpuMs * 1000) / values.length : Number.NaN,
    };
  });
}

/**
 * Responses per whole second from the first request on, for a server that has just become
 * ready (no warm-up run: the first seconds are the point).
 */
export async function perSecond(options: { url: string; body: string; connections: number; durationS: number }): Promise<number[]> {
  const started = performance.now();
  const buckets: number[] = Array.from({ length: options.durationS }, () => 0);
  await run(
    {
      url: options.url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: options.body,
      connections: options.connections,
      pipelining: 1,
      timeout: 10,
      duration: options.durationS,
    },
    () => {
      const second = Math.floor((performance.now() - started) / 1000);
      if (second < buckets.length) buckets[second] += 1;
    },
  );
  return buckets;
}
