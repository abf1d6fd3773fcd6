import { DEFAULT_PRICES, loadConfig } from '../../src/config';
import { estimateCostUsd, pricePeriod } from '../../src/telemetry/cost';

describe('DeepSeek price periods and estimated cost', () => {
  it('puts Mon–Fri 01:00–04:00 and 06:00–10:00 UTC at peak, everything else off-peak', () => {
    // 2026-11-23 is a Monday.
    expect(pricePeriod(new Date('2026-11-23T00:59:59Z'))).toBe('off_peak');
    expect(pricePeriod(new Date('2026-11-23T01:00:00Z'))).toBe('peak');
    expect(pricePeriod(new Date('2026-11-23T03:59:59Z'))).toBe('peak');
    expect(pricePeriod(new Date('2026-11-23T04:00:00Z'))).toBe('off_peak');
    expect(pricePeriod(new Date('2026-11-23T06:00:00Z'))).toBe('peak');
    expect(pricePeriod(new Date('2026-11-23T09:59:59Z'))).toBe('peak');
    expect(pricePeriod(new Date('2026-11-23T10:00:00Z'))).toBe('off_peak');
    expect(pricePeriod(new Date('2026-11-27T07:00:00Z'))).toBe('peak'); // Friday
    expect(pricePeriod(new Date('2026-11-28T07:00:00Z'))).toBe('off_peak'); // Saturday
    expect(pricePeriod(new Date('2026-11-29T02:00:00Z'))).toBe('off_peak'); // Sunday
  });

  it('prices cache-hit input, cache-miss input and output per 1M tokens at the period rates', () => {
    const usage = { promptTokens: 3_000_000, cacheHitTokens: 1_000_000, cacheMissTokens: 2_000_000, completionTokens: 1_000_000 };
    // flash off-peak: 0.003 + 2 × 0.15 + 0.6
    expect(estimateCostUsd(DEFAULT_PRICES, 'deepseek-flash', usage, new Date('2026-11-23T12:00:00Z'))).toEqual({
      usd: expect.closeTo(0.903, 9) as number,
      period: 'off_peak',
    });
    // v4-pro peak: 0.044 + 2 × 1.32 + 3.96
    expect(estimateCostUsd(DEFAULT_PRICES, 'deepseek-v4-pro', usage, new Date('2026-11-23T02:00:00Z'))?.usd).toBeCloseTo(6.644, 9);
    expect(estimateCostUsd(DEFAULT_PRICES, 'some-other-model', usage)).toBeUndefined();
  });

  it('reads DEEPSEEK_PRICES over the defaults and refuses a malformed table by name', () => {
    const config = loadConfig(
      { DEEPSEEK_PRICES: JSON.stringify({ 'deepseek-flash': { offPeak: { cacheHit: 1, cacheMiss: 2, output: 3 }, peak: { cacheHit: 2, cacheMiss: 4, output: 6 } } }) },
      { dotenvPath: false },
    );
    expect(config.deepseek.prices['deepseek-flash'].offPeak).toEqual({ cacheHit: 1, cacheMiss: 2, output: 3 });
    expect(config.deepseek.prices['deepseek-v4-pro']).toEqual(DEFAULT_PRICES['deepseek-v4-pro']);
    expect(loadConfig({}, { dotenvPath: false }).deepseek.prices).toEqual(DEFAULT_PRICES);

    for (const bad of ['not json', '{"deepseek-flash":{"offPeak":{"cacheHit":-1,"cacheMiss":0,"output":0}}}', '[1]']) {
      expect(() => loadConfig({ DEEPSEEK_PRICES: bad }, { dotenvPath: false })).toThrow(/DEEPSEEK_PRICES: expected a JSON object/);
    }
  });
});
