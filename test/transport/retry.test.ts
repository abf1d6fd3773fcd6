import { createDeepSeekClient } from '../../src/deepseek';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { TransportError } from '../../src/transport/errors';
import { backoffDelay, retryInterceptor, type RetryOptions } from '../../src/transport/retry';
import { RetryBudget } from '../../src/transport/retry-budget';
import { TransportCounters } from '../../src/transport/status';
import { chatRequest, failureOf, startHarness, type Harness } from '../deepseek/harness';
import { FAKE_TIMERS_KEEP, fakeNext, okResponse, rejectionOf, statusError, textHandler, upstreamRequest } from './fakes';

describe('retry policy (fake next, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: FAKE_TIMERS_KEEP }));
  afterEach(() => jest.useRealTimers());

  /** Backoff with random 0.5: 50 ms before the first retry, 100 before the second. */
  function retry(overrides: Partial<RetryOptions> = {}) {
    const counters = new TransportCounters();
    const interceptor = retryInterceptor({
      maxRetries: 2,
      baseMs: 100,
      maxMs: 1000,
      budget: new RetryBudget({ ratio: 1 }),
      counters,
      logger: silentLogger(),
      errorType: (error) => (error instanceof TransportError ? `named ${error.kind}` : 'ABORTED'),
      random: () => 0.5,
      ...overrides,
    });
    return { interceptor, counters };
  }

  it('retries a retryable failure after its backoff, and tells each attempt its number and why it repeats', async () => {
    const { interceptor, counters } = retry();
    const next = fakeNext(statusError(503), statusError(503), okResponse());
    const call = interceptor(next.dispatch)(upstreamRequest(), textHandler());

    await jest.advanceTimersByTimeAsync(49);
    expect(next.requests).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(next.requests).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(100);

    await expect(call).resolves.toBe('{"ok":true}');
    expect(next.requests.map((r) => r.retry)).toEqual([
      { attempt: 1, reason: undefined },
      { attempt: 2, reason: 'named status' },
      { attempt: 3, reason: 'named status' },
    ]);
    expect(counters.retries).toBe(2);
  });

  it('gives up after maxRetries with the last failure', async () => {
    const { interceptor } = retry();
    const last = statusError(500);
    const next = fakeNext(statusError(500), statusError(500), last);
    const call = rejectionOf(interceptor(next.dispatch)(upstreamRequest(), textHandler()));
    await jest.advanceTimersByTimeAsync(1000);

    expect(await call).toBe(last);
    expect(next.requests).toHaveLength(3);
  });

  it('never retries a rejection, a refused key, a full queue or anything not a TransportError', async () => {
    const failures = [
      statusError(400),
      new TransportError({ kind: 'overloaded' }),
      statusError(401),
      new TransportError({ kind: 'invalid-response', status: 200 }, { retryable: false }),
      new Error('a bug'),
    ];
    for (const failure of failures) {
      const next = fakeNext(failure, okResponse());
      expect(await rejectionOf(retry().interceptor(next.dispatch)(upstreamRequest(), textHandler()))).toBe(failure);
      expect(next.requests).toHaveLength(1);
    }
  });

  it('retries a 2xx its handler found unusable when that failure is retryable', async () => {
    const unusable = new TransportError({ kind: 'invalid-response', status: 200 }, { retryable: true });
    const next = fakeNext(okResponse(), okResponse());
    let reads = 0;
    const call = retry().interceptor(next.dispatch)(upstreamRequest(), {
      onResponse: async () => {
        reads += 1;
        if (reads === 1) throw unusable;
        return 'second answer';
      },
    });
    await jest.advanceTimersByTimeAsync(50);

    await expect(call).resolves.toBe('second answer');
  });

  it('waits for Retry-After when it is longer than the backoff', async () => {
    const next = fakeNext(statusError(429, { retryAfterMs: 1000 }), okResponse());
    const call = retry().interceptor(next.dispatch)(upstreamRequest(), textHandler());

    await jest.advanceTimersByTimeAsync(999);
    expect(next.requests).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);

    await expect(call).resolves.toBe('{"ok":true}');
  });

  it('fails at once with the last failure when the wait would end past the deadline', async () => {
    const limited = statusError(429, { retryAfterMs: 5000 });
    const next = fakeNext(limited, okResponse());
    const request = upstreamRequest({ deadline: { at: Date.now() + 1000 } });

    // No timer is advanced: the rejection comes without waiting.
    expect(await rejectionOf(retry().interceptor(next.dispatch)(request, textHandler()))).toBe(limited);
    expect(next.requests).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('makes no later attempt when the call is aborted during its backoff wait', async () => {
    const caller = new AbortController();
    const next = fakeNext(statusError(503), okResponse());
    const call = rejectionOf(retry().interceptor(next.dispatch)(upstreamRequest({ signal: caller.signal }), textHandler()));
    await jest.advanceTimersByTimeAsync(10);

    const reason = new Error('caller left');
    caller.abort(reason);
    await jest.advanceTimersByTimeAsync(10_000);

    expect(await call).toBe(reason);
    expect(next.requests).toHaveLength(1);
  });

  it('asks the retry budget before each retry and counts a denial', async () => {
    const { interceptor, counters } = retry({ budget: new RetryBudget({ ratio: 0, minRetries: 1 }) });
    const last = statusError(503);
    const next = fakeNext(statusError(503), last, okResponse());
    const call = rejectionOf(interceptor(next.dispatch)(upstreamRequest(), textHandler()));
    await jest.advanceTimersByTimeAsync(1000);

    expect(await call).toBe(last);
    expect(next.requests).toHaveLength(2);
    expect(counters).toMatchObject({ retries: 1, retryBudgetExhausted: 1 });
  });
});

describe('retry policy against the simulator', () => {
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
    h = await startHarness({ config: { timeoutMs: 3000 } });
    h.sim.faults.inject({ kind: 'status', status: 429, retryAfterSeconds: 5 });

    const { error } = await failureOf(() => h.client.chat(chatRequest()));

    // "At once" is pinned with fake timers above; here, the outcome through the client.
    expect((error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_RATE_LIMITED);
    expect((error as UpstreamError).details).toMatchObject({ status: 429, retryAfterMs: 5000, attempts: 1 });
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

});

describe('backoff', () => {
  it('backs off with full jitter: random(0, min(max, base × 2^retry))', () => {
    expect(backoffDelay(0, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(400);
    expect(backoffDelay(10, 100, 1000, () => 0.5)).toBe(500);
    expect(backoffDelay(2, 100, 1000, () => 0)).toBe(0);
  });
});
