import { ErrorCode, UpstreamError } from '../../src/errors';
import { chatRequest, failureOf, startHarness, type Harness } from '../deepseek/harness';

describe('circuit breaker', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function openCircuit(): Promise<void> {
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await failureOf(() => h.client.chat(chatRequest()));
    await failureOf(() => h.client.chat(chatRequest()));
  }

  it('opens after breakerThreshold consecutive failed calls and then fails fast without a request', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 10_000 } });
    await openCircuit();
    expect(h.client.status().circuit).toBe('OPEN');
    const before = h.sim.counters.total;

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).message).toMatch(/^DeepSeek is unavailable \(circuit open/);
    expect((error as UpstreamError).details).toMatchObject({ retryable: false, attempts: 0 });
    expect(elapsedMs).toBeLessThan(100);
    expect(h.sim.counters.total).toBe(before);
    expect(h.client.status()).toMatchObject({ shortCircuited: 1, failures: 3 });
    expect(h.client.status().breakerTransitions.map((t) => t.to)).toEqual(['OPEN']);
  });

  it('counts a call once, after its retries: retried-then-successful calls keep it closed', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 2 } });
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await h.client.chat(chatRequest());
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    await h.client.chat(chatRequest());

    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('lets one probe through after the cooldown (HALF_OPEN) and closes on its success', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await new Promise((resolve) => setTimeout(resolve, 250));
    // Reported as HALF_OPEN once the cooldown is over, so readiness checks let the probe come.
    expect(h.client.status().circuit).toBe('HALF_OPEN');

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    const status = h.client.status();
    expect(status.circuit).toBe('CLOSED');
    expect(status.breakerTransitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
    expect(Number.isNaN(Date.parse(status.breakerTransitions[0].at))).toBe(false);
  });

  it('lets only the probe through while HALF_OPEN; the others follow its success', async () => {
    h = await startHarness({ sim: { latencyMs: 100 }, config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await new Promise((resolve) => setTimeout(resolve, 250));
    h.sim.requests.length = 0;

    const results = await Promise.all([1, 2, 3].map(() => h.client.chat(chatRequest())));

    expect(results).toHaveLength(3);
    const [probe, ...rest] = h.sim.requests.map((r) => r.at);
    expect(rest.every((at) => at - probe >= 90)).toBe(true);
    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('opens again when the probe fails', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, breakerCooldownMs: 200 } });
    await openCircuit();
    await new Promise((resolve) => setTimeout(resolve, 250));
    h.sim.faults.inject({ kind: 'status', status: 500 });

    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
    expect(h.client.status().breakerTransitions.map((t) => t.to)).toEqual(['OPEN', 'HALF_OPEN', 'OPEN']);
  });

  it('does not count rejections, auth or balance failures (400/401/402/422)', async () => {
    h = await startHarness({ config: { breakerThreshold: 1, maxRetries: 0 } });
    for (const status of [400, 422, 401, 402]) {
      h.sim.faults.inject({ kind: 'status', status });
      await failureOf(() => h.client.chat(chatRequest()));
    }
    expect(h.client.status().circuit).toBe('CLOSED');
  });

  it('counts timeouts and 429s as failures', async () => {
    h = await startHarness({ config: { breakerThreshold: 2, maxRetries: 0, timeoutMs: 200, breakerCooldownMs: 10_000 } });
    h.sim.faults.inject({ kind: 'status', status: 429 });
    h.sim.faults.inject({ kind: 'hang' });
    await failureOf(() => h.client.chat(chatRequest()));
    await failureOf(() => h.client.chat(chatRequest()));

    expect(h.client.status().circuit).toBe('OPEN');
  });
});
