/**
 * The DeepSeek simulator as a child process of `npm run bench`: the same server as
 * `npm run simulator` (src/simulator/main.ts, any API key accepted), plus an IPC channel
 * so the bench can read the simulator's counters and change its latency between rows.
 *
 * Env: HOST (default 127.0.0.1), SIMULATOR_PORT (default 0), SIMULATOR_LATENCY_MS
 * (default 20), SIMULATOR_TOKEN_DELAY_MS (default 0), SIMULATOR_TIMINGS=1 (keep when each
 * recent chat request arrived and when its first text left, for `npm run bench:stream`).
 */
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startSimulator } from '../src/simulator';

interface Command {
  id: string;
  cmd: 'counters' | 'setLatency' | 'resetCounters' | 'timing';
  latencyMs?: number;
  /** `timing`: the request's last message content (the bench's prompt). */
  prompt?: string;
}

/** When a chat request arrived (its headers parsed) and its first text was written, in µs of the system's monotonic clock. */
interface Timing {
  receivedUs: number;
  firstTextUs?: number;
}

const TIMINGS_KEPT = 256;
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Records the timing of each chat request by its prompt (the last `"content"` of its body),
 * the most recent `TIMINGS_KEPT` only. `process.hrtime` reads CLOCK_MONOTONIC, the clock of
 * every process on the machine, so the bench compares these with its own readings. The first
 * text is the first body write carrying a non-empty `content` or `reasoning_content`.
 */
function recordTimings(timings: Map<string, Timing>): void {
  subscribe('http.server.request.start', (message) => {
    const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
    if (!request.url?.endsWith('/completions')) return;
    const timing: Timing = { receivedUs: monotonicUs() };
    let body = '';
    request.on('data', (piece: Buffer) => {
      if (body.length < 64 * 1024) body += piece.toString('utf8');
    });
    request.once('end', () => {
      const contents = [...body.matchAll(/"content":"((?:[^"\\]|\\.)*)"/g)];
      const prompt = contents.at(-1)?.[1];
      if (prompt === undefined) return;
      timings.delete(prompt);
      timings.set(prompt, timing);
      if (timings.size > TIMINGS_KEPT) timings.delete(timings.keys().next().value as string);
    });
    const write = response.write.bind(response) as (...args: unknown[]) => boolean;
    response.write = ((...args: unknown[]) => {
      if (timing.firstTextUs === undefined && /"(?:reasoning_)?content":"[^"]/.test(String(args[0]))) timing.firstTextUs = monotonicUs();
      return write(...args);
    }) as typeof response.write;
  });
}

async function main(): Promise<void> {
  const simulator = await startSimulator({
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.SIMULATOR_PORT ?? 0),
    latencyMs: Number(process.env.SIMULATOR_LATENCY_MS ?? 20),
    tokenDelayMs: Number(process.env.SIMULATOR_TOKEN_DELAY_MS ?? 0),
  });
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'simulator listening', url: simulator.url })}\n`);
  const timings = new Map<string, Timing>();
  if (process.env.SIMULATOR_TIMINGS === '1') recordTimings(timings);

  process.on('message', (message: Command) => {
    if (message.cmd === 'setLatency' && typeof message.latencyMs === 'number') {
      simulator.setOptions({ latencyMs: message.latencyMs });
      process.send?.({ id: message.id, value: true });
    } else if (message.cmd === 'resetCounters') {
      simulator.counters.reset();
      process.send?.({ id: message.id, value: true });
    } else if (message.cmd === 'timing') {
      process.send?.({ id: message.id, value: timings.get(message.prompt ?? '') ?? null });
    } else if (message.cmd === 'counters') {
      const c = simulator.counters;
      process.send?.({
        id: message.id,
        value: { total: c.total, byPath: c.byPath, byStatus: c.byStatus, maxInFlight: c.maxInFlight, connectionsOpened: c.connectionsOpened },
      });
    }
  });

  const stop = (): void => {
    void simulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Never outlive the bench: the IPC channel closes when the parent goes away.
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`simulator failed to start: ${String(error)}\n`);
  process.exit(1);
});
