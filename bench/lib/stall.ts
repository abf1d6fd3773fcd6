import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { summarize } from './stats';

/** What a side client saw while polling: how long other requests waited. */
export interface StallFigures {
  polls: number;
  /** Polls that failed (connection error, timeout, non-200). */
  failed: number;
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
}

/**
 * The poller's own event loop, in a worker thread: the probe's main thread builds
 * megabyte payloads and parses big answers, and a poller sharing that loop would report
 * the client's pauses as the server's. Plain JavaScript (no loader needed in the worker).
 */
const POLLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { host, port, intervalMs, timeoutMs } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let running = true;
const latencies = [];
let failed = 0;
parentPort.on('message', (message) => { if (message === 'stop') running = false; });
function poll() {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const done = (ok) => resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, ok });
    const req = http.get({ host, port, path: '/healthz', agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200));
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
  });
}
(async () => {
  await poll(); // opens the connection; a first request's connect is no stall
  parentPort.postMessage({ type: 'ready' });
  while (running) {
    const { ms, ok } = await poll();
    latencies.push(ms);
    if (!ok) failed += 1;
    if (running && ms < intervalMs) await new Promise((r) => setTimeout(r, intervalMs - ms));
  }
  agent.destroy();
  parentPort.postMessage({ type: 'done', latencies, failed });
})();
`;

/**
 * A side client that sends `GET /healthz` every `intervalMs` (one at a time, on its own
 * keep-alive connection) while a probe runs, and records each latency. A blocked event
 * loop in the server shows up as one poll that takes as long as the block: `maxMs`.
 */
export class HealthPoller {
  private constructor(private readonly worker: Worker) {}

  /** Starts polling once the connection is open (one unrecorded poll). */
  static async start(origin: string, intervalMs = 10, timeoutMs = 60_000): Promise<HealthPoller> {
    const { hostname, port } = new URL(origin);
    const worker = new Worker(POLLER_SOURCE, { eval: true, workerData: { host: hostname, port: Number(port), intervalMs, timeoutMs } });
    const [message] = (await once(worker, 'message')) as [{ type: string }];
    if (message.type !== 'ready') throw new Error(`health poller: unexpected ${JSON.stringify(message)}`);
    return new HealthPoller(worker);
  }

  /** Waits for the poll in flight (its latency counts: it may be the one that saw the stall). */
  async stop(): Promise<StallFigures> {
    this.worker.postMessage('stop');
    const [result] = (await once(this.worker, 'message')) as [{ latencies: number[]; failed: number }];
    await this.worker.terminate();
    const summary = summarize(result.latencies);
    return { polls: result.latencies.length, failed: result.failed, maxMs: summary.max, p99Ms: summary.p99, p50Ms: summary.p50 };
  }
}
