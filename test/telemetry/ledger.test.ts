import { DEFAULT_PRICES } from '../../src/config';
import { RequestLedger } from '../../src/telemetry/ledger';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RequestLedger', () => {
  it('counts overlapping upstream waits once (wall time), not per call', async () => {
    const ledger = new RequestLedger();
    const first = ledger.recordUpstreamCall();
    const second = ledger.recordJoined();
    await sleep(60);
    first();
    second();
    second(); // idempotent
    await sleep(40);
    const cost = ledger.finish();
    expect(cost).toMatchObject({ upstreamCalls: 1, joinedInFlight: 1, cacheHits: 0 });
    expect(cost.upstreamMs).toBeGreaterThanOrEqual(55);
    expect(cost.upstreamMs).toBeLessThan(95);
    expect(cost.totalMs).toBeGreaterThanOrEqual(cost.upstreamMs + 35);
    expect(cost.overheadMs).toBeCloseTo(cost.totalMs - cost.upstreamMs, 0);
  });

  it('freezes its figures at the first finish and estimates the cost of the calls it started', () => {
    const ledger = new RequestLedger(DEFAULT_PRICES);
    ledger.recordCacheHits(2);
    ledger.recordUsage('deepseek-flash', { promptTokens: 10, cacheHitTokens: 0, cacheMissTokens: 10, completionTokens: 20 });
    const first = ledger.finish();
    ledger.recordCacheHits(5);
    expect(ledger.finish()).toBe(first);
    expect(first.cacheHits).toBe(2);
    expect(first.estimatedCostUsd).toBeGreaterThan(0);
  });

  it('counts a wait still open at the end until the end', async () => {
    const ledger = new RequestLedger();
    ledger.recordUpstreamCall();
    await sleep(30);
    const cost = ledger.finish();
    expect(cost.upstreamMs).toBeGreaterThanOrEqual(25);
    expect(cost.upstreamMs).toBeLessThanOrEqual(cost.totalMs);
  });
});
