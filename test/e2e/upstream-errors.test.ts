import type { Gateway } from '../../src/app';
import { startSimulator, type Simulator } from '../../src/simulator';
import { gql, startTestGateway } from '../helpers/gateway';

const KEY = 'sk-test-0123456789abcdef';
const COMPLETION = `query ($input: CompletionInput!) { completion(input: $input) { id content } }`;

describe('every upstream failure becomes a typed GraphQL error', () => {
  let simulator: Simulator;
  let gateway: Gateway;

  beforeAll(async () => {
    simulator = await startSimulator({ apiKeys: [KEY] });
    gateway = await startTestGateway({
      DEEPSEEK_API_KEY: KEY,
      DEEPSEEK_BASE_URL: simulator.url,
      DEEPSEEK_MAX_RETRIES: '0',
      // Long enough that a loaded machine never turns a slow answer into a timeout; the
      // hang case below waits it out once.
      DEEPSEEK_TIMEOUT_MS: '2000',
      DEEPSEEK_BREAKER_MIN_CALLS: '1000',
    });
    // A cold first request (JIT, first connection) must not land in a timed test.
    await gql(gateway, COMPLETION, { input: { prompt: 'warm up', cache: 'BYPASS' } });
  });
  afterAll(async () => {
    await gateway.close();
    await simulator.close();
  });
  afterEach(() => simulator.faults.clear());

  let n = 0;
  const ask = () => gql(gateway, COMPLETION, { input: { prompt: `error case ${++n}`, cache: 'BYPASS' } });

  it.each([
    [400, 'UPSTREAM_REJECTED'],
    [422, 'UPSTREAM_REJECTED'],
    [429, 'UPSTREAM_RATE_LIMITED'],
    [500, 'UPSTREAM_UNAVAILABLE'],
    [503, 'UPSTREAM_UNAVAILABLE'],
  ])('maps HTTP %i to %s with the upstream status and trace id', async (status, code) => {
    simulator.faults.inject({ kind: 'status', status, message: `injected ${status} for ${KEY}` });
    const res = await ask();
    expect(res.status).toBe(200);
    expect(res.data).toBeNull();
    const error = res.errors![0]!;
    expect(error.extensions).toMatchObject({ code, upstreamStatus: status });
    expect(error.extensions!.upstreamTraceId).toMatch(/^[0-9a-f]{32}$/);
    expect(simulator.requests.at(-1)!.status).toBe(status);
    expect(JSON.stringify(res)).not.toContain(KEY);
    expect(JSON.stringify(res)).not.toContain(KEY.slice(-4) + ' ');
  });

  it('keeps the upstream reason for a rejected request, without the raw body', async () => {
    const res = await gql(gateway, COMPLETION, { input: { prompt: 'x', maxTokens: 100 } });
    expect(res.errors).toBeUndefined();
    simulator.faults.inject({ kind: 'status', status: 400, message: 'Invalid max_tokens value, the valid range of max_tokens is [1, 393216]' });
    const rejected = await ask();
    expect(rejected.errors![0]!.message).toContain('Invalid max_tokens value');
    expect(JSON.stringify(rejected)).not.toContain('invalid_request_error');
  });

  it('maps a hang past DEEPSEEK_TIMEOUT_MS to UPSTREAM_TIMEOUT', async () => {
    simulator.faults.inject({ kind: 'hang' });
    const started = Date.now();
    const res = await ask();
    expect(res.errors![0]!.extensions!.code).toBe('UPSTREAM_TIMEOUT');
    // Ended by the deadline, not by the hang (a generous bound: a loaded machine must not fail it).
    expect(Date.now() - started).toBeLessThan(7000);
  });

  it('maps a connection reset to UPSTREAM_UNAVAILABLE', async () => {
    simulator.faults.inject({ kind: 'reset' });
    const res = await ask();
    expect(res.errors![0]!.extensions!.code).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('tolerates blank lines before a JSON body', async () => {
    simulator.faults.inject({ kind: 'blank-lines', count: 4, intervalMs: 10 });
    const res = await ask();
    expect(res.errors).toBeUndefined();
    expect((res.data as { completion: { content: string } }).completion.content.length).toBeGreaterThan(0);
  });
});

describe('an upstream 401 or 402 takes the key out of rotation', () => {
  it.each([
    [401, 'UPSTREAM_AUTH_FAILED', 'UNAUTHORIZED'],
    [402, 'UPSTREAM_INSUFFICIENT_BALANCE', 'INSUFFICIENT_BALANCE'],
  ])('maps HTTP %i to %s and reports the key as %s', async (status, code, reason) => {
    const simulator = await startSimulator({ apiKeys: [KEY] });
    const gateway = await startTestGateway({ DEEPSEEK_API_KEY: KEY, DEEPSEEK_BASE_URL: simulator.url });
    try {
      simulator.faults.inject({ kind: 'status', status });
      const res = await gql(gateway, COMPLETION, { input: { prompt: `key case ${status}` } });
      expect(res.errors![0]!.extensions).toMatchObject({ code, upstreamStatus: status });
      expect(res.errors![0]!.extensions!.upstreamTraceId).toMatch(/^[0-9a-f]{32}$/);
      const state = await gql(gateway, '{ upstream { keys { active reason } } }');
      expect(state.data).toEqual({ upstream: { keys: [{ active: false, reason }] } });
      expect(JSON.stringify([res, state])).not.toContain(KEY);
    } finally {
      await gateway.close();
      await simulator.close();
    }
  });
});

describe('a wrong API key', () => {
  it('answers UPSTREAM_AUTH_FAILED and never shows the key', async () => {
    const simulator = await startSimulator({ apiKeys: ['sk-the-right-key-123456'] });
    const wrong = 'sk-the-wrong-key-987654';
    const gateway = await startTestGateway({ DEEPSEEK_API_KEY: wrong, DEEPSEEK_BASE_URL: simulator.url });
    try {
      const res = await gql(gateway, COMPLETION, { input: { prompt: 'who am i' } });
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_AUTH_FAILED', upstreamStatus: 401 });
      const status = await gql(gateway, '{ upstream { mode keys { fingerprint active reason } } }');
      expect(status.data).toMatchObject({ upstream: { mode: 'REAL', keys: [{ active: false, reason: 'UNAUTHORIZED' }] } });
      const everything = JSON.stringify([res, status]);
      expect(everything).not.toContain(wrong);
      expect(everything).not.toContain(wrong.slice(-6));
    } finally {
      await gateway.close();
      await simulator.close();
    }
  });
});
