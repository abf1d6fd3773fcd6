import { Agent, request } from 'undici';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator';

export const KEY = 'sk-sim-test-key-abcd';
export const TRACE_ID = /^[0-9a-f]{32}$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One simulator and one undici agent per suite; `close` releases both (no open handles). */
export function useSimulator(options: SimulatorOptions = {}): {
  sim: () => Simulator;
  agent: () => Agent;
  call: (path: string, init?: { method?: string; body?: unknown; key?: string | null; headersTimeout?: number }) => Promise<RawResponse>;
} {
  let sim: Simulator | undefined;
  let agent: Agent | undefined;
  beforeAll(async () => {
    sim = await startSimulator(options);
    agent = new Agent();
  });
  afterAll(async () => {
    await agent?.close();
    await sim?.close();
  });
  afterEach(() => {
    sim?.faults.clear();
    sim?.setOptions({ latencyMs: 0, tokenDelayMs: 0, keepAliveIntervalMs: 0, ...options });
  });
  const current = (): Simulator => {
    if (sim === undefined) throw new Error('simulator not started');
    return sim;
  };
  const currentAgent = (): Agent => {
    if (agent === undefined) throw new Error('agent not started');
    return agent;
  };
  return {
    sim: current,
    agent: currentAgent,
    call: (path, init = {}) => call(current(), currentAgent(), path, init),
  };
}

/** Raw HTTP exchange with the simulator: the body is read as text, untouched. */
export async function call(
  sim: Simulator,
  agent: Agent,
  path: string,
  init: { method?: string; body?: unknown; key?: string | null; headersTimeout?: number } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = init.key === undefined ? KEY : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  const res = await request(`${sim.url}${path}`, {
    method: method as 'GET' | 'POST',
    headers,
    body,
    dispatcher: agent,
    headersTimeout: init.headersTimeout,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** The `data:` payloads of an SSE body, in order (comments dropped). */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((event) => event.startsWith('data: '))
    .map((event) => event.slice('data: '.length));
}

export async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('waitFor: condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function chatBody(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'deepseek-flash', messages: [{ role: 'user', content }], ...extra };
}
