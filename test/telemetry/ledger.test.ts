import { DEFAULT_PRICES } from '../../src/config';
import { RequestLedger } from '../../src/telemetry/ledger';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance(ms: number): void } {
  let at = 1000;
  return { now: () => at, advance: (ms) => void (at += ms) };
}

describe('RequestLedger', () => {
  it('counts overlapping upstream waits once (wall time), not per call', () => {
    const clock = manualClock();
    const ledger = new RequestLedger(undefined, clock.now);
    const first = ledger.recordUpstreamCall();
    clock.advance(10);
    const second = ledger.recordJoined();
    clock.advance(50);
    first();
    clock.advance(5);
    second();
    second(); // idempotent
    clock.advance(40);
    const cost = ledger.finish();
    expect(cost).toMatchObject({ upstreamCalls: 1, joinedInFlight: 1, cacheHits: 0 });
    // One wait from 0 to 65 ms, however many loads waited inside it.
    expect(cost.upstreamMs).toBe(65);
    expect(cost.totalMs).toBe(105);
    expect(cost.overheadMs).toBe(40);
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

  it('counts a wait still open at the end until the end', () => {
    const clock = manualClock();
    const ledger = new RequestLedger(undefined, clock.now);
    clock.advance(5);
    ledger.recordUpstreamCall();
    clock.advance(30);
    const cost = ledger.finish();
    expect(cost.upstreamMs).toBe(30);
    expect(cost.totalMs).toBe(35);
  });
});
