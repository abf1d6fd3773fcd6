import { ErrorCode, UpstreamError } from '../../src/errors';
import { Deadline } from '../../src/lib/abort';
import { chatRequest, failureOf, startHarness, type Harness } from '../deepseek/harness';

describe('call deadline', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('fails a hung request with UPSTREAM_TIMEOUT once timeoutMs has passed', async () => {
    h = await startHarness({ config: { timeoutMs: 500 } });
    h.sim.faults.inject({ kind: 'hang' });

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    expect((error as UpstreamError).message).toBe('DeepSeek did not answer within 500 ms');
    expect((error as UpstreamError).details.attempts).toBe(1);
    expect(elapsedMs).toBeGreaterThanOrEqual(480);
    expect(elapsedMs).toBeLessThan(800);
    // The hung request was aborted, not left open at the upstream.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.sim.counters.inFlight).toBe(0);
  });

  it('fails with UPSTREAM_TIMEOUT while blank lines keep arriving past the deadline', async () => {
    h = await startHarness({ config: { timeoutMs: 500 } });
    h.sim.faults.inject({ kind: 'blank-lines', intervalMs: 20 });

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    expect(elapsedMs).toBeLessThan(800);
  });

  it('covers every attempt and backoff wait: a call failing forever still ends at the deadline', async () => {
    h = await startHarness({
      config: { timeoutMs: 400, maxRetries: 10, retryBaseMs: 100, retryMaxMs: 100 },
      tuning: { random: () => 0.99 },
    });
    h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 50 });

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    // The next wait would pass the deadline, so the last 503 is reported at once.
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
    expect((error as UpstreamError).details.attempts).toBeGreaterThanOrEqual(3);
    expect((error as UpstreamError).details.attempts).toBeLessThan(6);
    expect(elapsedMs).toBeLessThan(600);
  });

  it('times out across attempts when one attempt hangs after a retry', async () => {
    h = await startHarness({ config: { timeoutMs: 500 } });
    h.sim.faults.inject({ kind: 'status', status: 503 });
    h.sim.faults.inject({ kind: 'hang' });

    const { error, elapsedMs } = await failureOf(() => h.client.chat(chatRequest()));

    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_TIMEOUT);
    expect((error as UpstreamError).details.attempts).toBe(2);
    expect(elapsedMs).toBeLessThan(800);
  });

  it('retries an attempt that gets no response headers within headersTimeoutMs, inside the deadline', async () => {
    h = await startHarness({ config: { timeoutMs: 3000, headersTimeoutMs: 300 } });
    h.sim.faults.inject({ kind: 'hang' });

    const started = Date.now();
    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    expect(Date.now() - started).toBeLessThan(1500);
    expect(h.sim.counters.byPath['/chat/completions']).toBe(2);
    expect(h.client.status().retries).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.sim.counters.inFlight).toBe(0); // the hung attempt was closed, not left open
  });

  it('does not cut a queued request that has its headers and sends keep-alive blank lines', async () => {
    h = await startHarness({ config: { timeoutMs: 3000, headersTimeoutMs: 200 } });
    h.sim.faults.inject({ kind: 'blank-lines', count: 10, intervalMs: 50 });

    const result = await h.client.chat(chatRequest());

    expect(result.content).toBeTruthy();
    expect(h.sim.counters.byPath['/chat/completions']).toBe(1);
  });

  it('clears its timer when disposed and reports the time left', () => {
    const deadline = new Deadline(10_000);
    expect(deadline.expired).toBe(false);
    expect(deadline.remainingMs()).toBeGreaterThan(9_000);
    deadline.dispose();
    expect(deadline.expired).toBe(false);
  });

  it('aborts with the reason its owner names, once its time has passed', () => {
    jest.useFakeTimers();
    try {
      const named = new Error('named by the owner');
      const deadline = new Deadline(100, () => named);
      jest.advanceTimersByTime(99);
      expect(deadline.expired).toBe(false);
      jest.advanceTimersByTime(1);
      expect(deadline.signal.reason).toBe(named);
    } finally {
      jest.useRealTimers();
    }
  });
});
