import type { Instruments } from '../../src/telemetry/instruments';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { testConfig, type Config } from '../../src/config';
import { createDeepSeekClient, type DeepSeekClient, type TransportTuning } from '../../src/deepseek';
import type { ChatRequest } from '../../src/deepseek/types';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';

/** Keys whose suffixes are not hex, so a fingerprint can never contain them by chance. */
export const GOOD_KEY = 'sk-good-test-key-QRSTUVWX';
export const BAD_KEY = 'sk-bad-test-key-MNOPQRSZ';
export const SPARE_KEY = 'sk-spare-test-key-KLMNOPQY';

/**
 * Test-sized settings: short backoffs and cooldowns, and a call deadline long enough that a
 * loaded machine never cuts a call by accident (tests about the deadline set their own).
 */
export function testSettings(overrides: Partial<Config['deepseek']> = {}): Config['deepseek'] {
  return {
    ...testConfig().deepseek,
    mode: 'real',
    apiKeys: [GOOD_KEY],
    timeoutMs: 10_000,
    maxRetries: 2,
    retryBaseMs: 10,
    retryMaxMs: 50,
    retryBudget: 0.2,
    breakerCooldownMs: 200,
    maxConcurrency: 8,
    maxQueue: 100,
    streamMaxMs: 5000,
    ...overrides,
  };
}

export interface Harness {
  sim: Simulator;
  client: DeepSeekClient;
  config: Config['deepseek'];
  /** Every log line the client wrote (debug and up), serialised. */
  logs: string[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  sim?: SimulatorOptions;
  config?: Partial<Config['deepseek']>;
  tuning?: TransportTuning;
  instruments?: Instruments;
}

/** A logger at debug level that keeps its lines in memory. */
export function capturingLogger(lines: string[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return pino({ level: 'debug' }, sink);
}

/** A real simulator on port 0 and a client pointed at it; `close()` ends both. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const sim = await startSimulator({ apiKeys: [GOOD_KEY], ...options.sim });
  const config = testSettings({ baseUrl: sim.url, ...options.config });
  const logs: string[] = [];
  const client = createDeepSeekClient({ config, logger: capturingLogger(logs), tuning: options.tuning, instruments: options.instruments });
  return {
    sim,
    client,
    config,
    logs,
    async close() {
      await client.close();
      await sim.close();
    },
  };
}

let counter = 0;

/** A distinct chat request each call (so answers and cache keys differ). */
export function chatRequest(overrides: Partial<ChatRequest> = {}): ChatRequest {
  counter += 1;
  return {
    kind: 'chat',
    model: 'deepseek-flash',
    messages: [{ role: 'user', content: `question number ${counter}` }],
    thinking: false,
    ...overrides,
  };
}

/**
 * Resolves once `predicate` holds, polling every 10 ms. The limit only turns a hang into a
 * failure; it is long so that a loaded machine cannot make a passing test fail.
 */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Runs `fn`, expecting it to reject; returns the rejection and the time it took. */
export async function failureOf(fn: () => Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = Date.now();
  try {
    await fn();
  } catch (error) {
    return { error, elapsedMs: Date.now() - started };
  }
  throw new Error('expected a rejection');
}

/** Everything about an error a client or a log could ever see, as one string. */
export function exposedText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return [error.message, error.stack ?? '', JSON.stringify(error), JSON.stringify(error, Object.getOwnPropertyNames(error))].join('\n');
}
