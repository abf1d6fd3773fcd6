import type { PriceTable } from '../config';

/** Token counts as DeepSeek reports them (a structural subset of the client's `Usage`). */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  cacheHitTokens: number;
  cacheMissTokens: number;
}

export type PricePeriod = 'peak' | 'off_peak';

/** Peak windows in UTC hours [from, to), Monday to Friday (deepseek-api.md §6). */
const PEAK_HOURS_UTC: ReadonlyArray<readonly [number, number]> = [
  [1, 4],
  [6, 10],
];

/**
 * DeepSeek's billing period at `at`: Mon–Fri 01:00–04:00 and 06:00–10:00 UTC are peak.
 * (Chinese public holidays are off-peak too; they are not modelled, so an estimate on such
 * a day errs high.)
 */
export function pricePeriod(at: Date): PricePeriod {
  const day = at.getUTCDay();
  if (day === 0 || day === 6) return 'off_peak';
  const hour = at.getUTCHours();
  return PEAK_HOURS_UTC.some(([from, to]) => hour >= from && hour < to) ? 'peak' : 'off_peak';
}

/**
 * Estimated USD cost of one completion: cache-hit input, cache-miss input and output
 * tokens at the model's rates for the period. Undefined for a model the table lacks.
 */
export function estimateCostUsd(
  prices: PriceTable,
  model: string,
  usage: TokenUsage,
  at: Date = new Date(),
): { usd: number; period: PricePeriod } | undefined {
  const table = prices[model];
  if (!table) return undefined;
  const period = pricePeriod(at);
  const rates = period === 'peak' ? table.peak : table.offPeak;
  const usd =
    (usage.cacheHitTokens * rates.cacheHit + usage.cacheMissTokens * rates.cacheMiss + usage.completionTokens * rates.output) /
    1_000_000;
  return { usd, period };
}
