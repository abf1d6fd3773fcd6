import { createDeepSeekClient } from '../../src/deepseek';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { backoffDelay } from '../../src/transport/retry';
import { chatRequest, failureOf, startHarness, type Harness } from '../deepseek/harness';

describe('retry policy', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('retries a 503 twice then succeeds on the third attempt', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });

    const result = await h.client.chat(chatRequest());

    expect(result.content).toContain('Simulated deepseek-flash answer');
    expect(h.sim.counters.byPath['/chat/completions']).toBe(3);
    expect(h.sim.counters.byStatus).toEqual({ 503: 2, 200: 1 });
    expect(h.client.status()).toMatchObject({ calls: 1, retries: 2, failures: 0 });
  });

  it('gives up after three 500s with UPSTREAM_UNAVAILABLE and attempts=3', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 500 }, { count: 3 });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect(error).toBeInstanceOf(UpstreamError);
    const upstream = error as UpstreamError;
    expect(upstream.code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect(upstream.message).toBe('DeepSeek is unavailable (HTTP 500)');
    expect(upstream.details).toMatchObject({ status: 500, attempts: 3, retryable: true });
    expect(upstream.extensions.attempts).toBe(3);
    expect(h.sim.counters.total).toBe(3);
  });

  it('never retries a 400', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'status', status: 400, message: 'Model Not Exist' }, { count: 3 });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).details.attempts).toBe(1);
    expect(h.sim.counters.total).toBe(1);
  });

  it('honours Retry-After: 1 on a 429 and then succeeds', async () => {
    h = await startHarness({ config: { timeoutMs: 3000 } });
    h.sim.faults.inject({ kind: 'status', status: 429, retryAfterSeconds: 1 });

    const started = Date.now();
    const result = await h.client.chat(chatRequest());
    const elapsed = Date.now() - started;

    expect(result.content).toBeTruthy();
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(h.sim.counters.byStatus).toEqual({ 429: 1, 200: 1 });
  });

  it('fails at once with the 429 when Retry-After would pass the deadline', async () => {
    h = await startHarness({ config: { timeoutMs: 1000 } });
    h.sim.faults.inject({ kind: 'status', status: 429, retryAfterSeconds: 5 });

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_RATE_LIMITED);
    expect((error as UpstreamError).details).toMatchObject({ status: 429, retryAfterMs: 5000, attempts: 1 });
    expect(elapsedMs).toBeLessThan(500);
    expect(h.sim.counters.total).toBe(1);
  });

  it('retries after a connection reset', async () => {
    h = await startHarness();
    h.sim.faults.inject({ kind: 'reset' });

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    expect(h.sim.counters.total).toBe(2);
    expect(h.client.status().retries).toBe(1);
  });

  it('retries after a connection is refused, then reports UPSTREAM_UNAVAILABLE', async () => {
    h = await startHarness();
    const closedUrl = h.sim.url;
    await h.sim.close();
    const client = createDeepSeekClient({ config: { ...h.config, baseUrl: closedUrl }, logger: silentLogger() });
    try {
      const { error } = await failureOf(() => client.chat(chatRequest()));
      expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
      expect((error as UpstreamError).details).toMatchObject({ retryable: true, attempts: 3 });
      expect(client.status().retries).toBe(2);
    } finally {
      await client.close();
    }
  });

  it('backs off with full jitter: random(0, min(max, base × 2^retry))', () => {
    expect(backoffDelay(0, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(400);
    expect(backoffDelay(10, 100, 1000, () => 0.5)).toBe(500);
    expect(backoffDelay(2, 100, 1000, () => 0)).toBe(0);
  });
});
