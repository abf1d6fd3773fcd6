import { TripRule } from '../../src/transport/trip-rule';

/** The defaults: 50 % over 10 s, at least 20 calls. Time is an injected clock. */
function rule(options: Partial<{ failureRate: number; windowMs: number; minCalls: number }> = {}) {
  let now = 1_000_000;
  const trip = new TripRule({ failureRate: 0.5, windowMs: 10_000, minCalls: 20, ...options, now: () => now });
  return { trip, later: (ms: number) => (now += ms) };
}

/** Deterministic 30 % failures with no two failures in a row: ✗✓✓✗✓✓✗✓✓✓, repeated. */
const THIRTY_PERCENT = [false, true, true, false, true, true, false, true, true, true];

describe('trip rule', () => {
  it('never opens on 30 % failures, at any traffic', () => {
    for (const callsPerSecond of [2, 20, 1000]) {
      const { trip, later } = rule();
      let opened = 0;
      // One minute of traffic.
      for (let i = 0; i < callsPerSecond * 60; i++) {
        later(1000 / callsPerSecond);
        if (THIRTY_PERCENT[i % THIRTY_PERCENT.length]) trip.success();
        else if (trip.failure()) opened += 1;
      }
      expect({ callsPerSecond, opened }).toEqual({ callsPerSecond, opened: 0 });
      expect(trip.snapshot().failures / trip.snapshot().calls).toBeCloseTo(0.3, 1);
    }
  });

  it('opens on a sudden outage after ten healthy seconds within minCalls failed calls, long before the rate would', () => {
    const { trip, later } = rule();
    for (let i = 0; i < 1000; i++) {
      later(10);
      trip.success();
    }
    let failed = 0;
    let opened = false;
    while (!opened) {
      later(10);
      failed += 1;
      opened = trip.failure();
    }
    // 100 calls/s: 20 failed calls are 0.2 s; the window (its oldest bucket partly gone) is
    // then still over 97 % healthy.
    expect(failed).toBe(20);
    expect(trip.snapshot()).toMatchObject({ failures: 20, failuresInARow: 20 });
    expect(trip.snapshot().calls).toBeGreaterThan(900);
  });

  it('opens on a failure rate at or above the threshold once the window holds minCalls calls, without any run', () => {
    const { trip, later } = rule();
    // ✗✓ alternating: 50 %, never two failures in a row; below minCalls nothing opens.
    for (let i = 0; i < 10; i++) {
      later(100);
      expect(trip.failure()).toBe(false);
      later(100);
      trip.success();
    }
    expect(trip.snapshot()).toMatchObject({ calls: 20, failures: 10, failuresInARow: 0 });
    later(100);
    expect(trip.failure()).toBe(true); // 11 of 21
  });

  it('needs minCalls: at low traffic a rate of 90 % over fewer calls does not open it, a run of minCalls does', () => {
    const { trip, later } = rule();
    // One call every 2 s: the 10 s window never holds more than five calls.
    for (let i = 0; i < 19; i++) {
      later(2000);
      expect(trip.failure()).toBe(false);
    }
    expect(trip.snapshot()).toMatchObject({ calls: 5, failures: 5, failuresInARow: 19 });
    later(2000);
    trip.success();
    for (let i = 0; i < 19; i++) {
      later(2000);
      expect(trip.failure()).toBe(false);
    }
    later(2000);
    expect(trip.failure()).toBe(true); // the 20th in a row, 40 s after the run began
  });

  it('forgets calls older than the window, also after a quiet spell', () => {
    const { trip, later } = rule();
    for (let i = 0; i < 19; i++) {
      later(100);
      trip.failure();
    }
    trip.success();
    expect(trip.snapshot()).toMatchObject({ calls: 20, failures: 19 });

    later(60 * 60 * 1000); // a quiet hour
    expect(trip.snapshot()).toMatchObject({ calls: 0, failures: 0 });
    for (let i = 0; i < 19; i++) {
      later(100);
      expect(trip.failure()).toBe(false);
    }
  });

  it('slides: failures leave the window as it moves on', () => {
    const { trip, later } = rule({ minCalls: 4 });
    trip.failure();
    trip.success();
    trip.failure();
    later(10_000);
    trip.success();
    trip.success();
    trip.success();
    expect(trip.snapshot()).toMatchObject({ calls: 3, failures: 0 });
    expect(trip.failure()).toBe(false); // 1 of 4, not 3 of 7
  });

  it('judges afresh after a reset', () => {
    const { trip, later } = rule({ minCalls: 4 });
    for (let i = 0; i < 3; i++) trip.failure();
    trip.reset();
    later(1);
    expect(trip.snapshot()).toEqual({ calls: 0, failures: 0, failuresInARow: 0 });
    expect(trip.failure()).toBe(false);
  });
});
