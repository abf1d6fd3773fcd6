import { ErrorCode, UpstreamError } from '../../src/errors';
import { RetryBudget } from '../../src/transport/retry-budget';
import { chatRequest, failureOf, startHarness, type Harness } from '../deepseek/harness';

describe('retry budget', () => {
  it('allows retries up to ratio × calls in the window, above a floor', () => {
    const budget = new RetryBudget({ ratio: 0.5, windowMs: 1000, minRetries: 1, now: () => 0 });
    for (let i = 0; i < 4; i++) budget.recordCall();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    expect(budget.totals()).toEqual({ calls: 4, retries: 2 });
  });

  it('forgets calls and retries once they leave the sliding window', () => {
    let now = 0;
    const budget = new RetryBudget({ ratio: 0, windowMs: 1000, minRetries: 1, now: () => now });
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
    now = 500;
    expect(budget.tryRetry()).toBe(false);
    now = 1100;
    expect(budget.totals().retries).toBe(0);
    expect(budget.tryRetry()).toBe(true);
  });

  it('always allows the floor, so a quiet process still retries a single failure', () => {
    const budget = new RetryBudget({ ratio: 0 });
    for (let i = 0; i < 10; i++) expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false);
  });

  describe('in the transport', () => {
    let h: Harness;
    afterEach(async () => {
      await h.close();
    });

    it('denies the retry when the budget is spent and counts the denial', async () => {
      h = await startHarness({ config: { retryBudget: 0 }, tuning: { retryBudgetMinRetries: 1 } });
      h.sim.faults.inject({ kind: 'status', status: 503 }, { count: 4 });

      // The first call may use the one retry of the floor...
      const first = await failureOf(() => h.client.chat(chatRequest()));
      expect((first.error as UpstreamError).details.attempts).toBe(2);
      // ...the second may not retry at all.
      const second = await failureOf(() => h.client.chat(chatRequest()));

      expect((second.error as UpstreamError).code).toBe(ErrorCode.UPSTREAM_UNAVAILABLE);
      expect((second.error as UpstreamError).details.attempts).toBe(1);
      expect(h.sim.counters.total).toBe(3);
      expect(h.client.status()).toMatchObject({ retries: 1, retryBudgetExhausted: 2 });
    });
  });
});
