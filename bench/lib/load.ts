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
}

function run(options: autocannon.Options, onResponse?: (ms: number) => void): Promise<autocannon.Result> {
  const instance = autocannon(options);
  if (onResponse) {
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => onResponse(responseTime));
  }
  return new Promise((resolve, reject) => instance.then(resolve, reject));
}

/** A warm-up run (discarded), then the measured run of `durationS` seconds. */
export async function measure(options: LoadOptions): Promise<LoadResult> {
  const base: autocannon.Options = {
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
  if (options.warmupS > 0) await run({ ...base, duration: options.warmupS });

  const samples = new Samples();
  const cpuBefore = options.serverPid ? cpuTimeMs(options.serverPid) : undefined;
  const started = process.hrtime.bigint();
  const result = await run({ ...base, duration: options.durationS }, (ms) => samples.push(ms));
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpuAfter = options.serverPid ? cpuTimeMs(options.serverPid) : undefined;

  const requests = samples.length;
  const cpuMs = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
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
