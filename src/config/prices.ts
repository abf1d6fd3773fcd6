import { z } from 'zod';

/** USD per 1M tokens for one model in one period. */
export interface TokenRates {
  /** Input tokens served from DeepSeek's context cache (`prompt_cache_hit_tokens`). */
  cacheHit: number;
  /** Input tokens not in the context cache (`prompt_cache_miss_tokens`). */
  cacheMiss: number;
  /** Output tokens, reasoning included. */
  output: number;
}

export interface ModelPrices {
  offPeak: TokenRates;
  peak: TokenRates;
}

/** Model id (as DeepSeek reports it in responses) → its prices. */
export type PriceTable = Readonly<Record<string, ModelPrices>>;

/**
 * DeepSeek's list prices in effect since 2026-09-10 (docs: deepseek-api.md §6). Peak hours
 * are Mon–Fri 01:00–04:00 and 06:00–10:00 UTC; off-peak is half of peak. Used only for the
 * *estimated* cost figures; DeepSeek's invoice is the truth.
 */
export const DEFAULT_PRICES: PriceTable = {
  'deepseek-flash': {
    offPeak: { cacheHit: 0.003, cacheMiss: 0.15, output: 0.6 },
    peak: { cacheHit: 0.006, cacheMiss: 0.3, output: 1.2 },
  },
  'deepseek-v4-pro': {
    offPeak: { cacheHit: 0.022, cacheMiss: 0.66, output: 1.98 },
    peak: { cacheHit: 0.044, cacheMiss: 1.32, output: 3.96 },
  },
};

const rate = z.number().finite().min(0).max(1_000_000);
const rates = z.object({ cacheHit: rate, cacheMiss: rate, output: rate }).strict();
const priceOverrides = z.record(
  z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  z.object({ offPeak: rates, peak: rates }).strict(),
);

export const PRICES_FORM =
  'a JSON object such as {"deepseek-flash":{"offPeak":{"cacheHit":0.003,"cacheMiss":0.15,"output":0.6},"peak":{"cacheHit":0.006,"cacheMiss":0.3,"output":1.2}}} (USD per 1M tokens; listed models replace the defaults, others are kept)';

/**
 * Parses `DEEPSEEK_PRICES` and lays it over the defaults, model by model. Returns a problem
 * message instead of throwing, so `loadConfig` can report it with the others.
 */
export function parsePrices(json: string | undefined): { prices: PriceTable } | { problem: string } {
  if (json === undefined) return { prices: DEFAULT_PRICES };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { problem: `DEEPSEEK_PRICES: expected ${PRICES_FORM}` };
  }
  const parsed = priceOverrides.safeParse(value);
  if (!parsed.success) return { problem: `DEEPSEEK_PRICES: expected ${PRICES_FORM}` };
  return { prices: { ...DEFAULT_PRICES, ...parsed.data } };
}
