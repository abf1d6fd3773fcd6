import type { ModelPrices, PriceTable } from '../config';
import type { CompletionRequest, Usage } from '../deepseek/types';
import { estimateCostUsd, pricePeriod } from '../telemetry/cost';

/**
 * Tokens a chat template adds around each message (role markers, separators). DeepSeek's
 * template adds a few; this errs high.
 */
const TOKENS_PER_MESSAGE = 8;
/** Tokens the template adds once per request (beginning of sentence, assistant prefix). */
const TOKENS_PER_REQUEST = 16;

/** A reservation's worst case: what one upstream call can cost at most. */
export interface WorstCase {
  /** Prompt tokens (an upper bound) plus the output cap. */
  tokens: number;
  /** Estimated USD in micro-dollars: the prompt at the cache-miss rate plus the output cap at the output rate. */
  microUsd: number;
}

/**
 * The most tokens a prompt can be: DeepSeek's tokenizer is a byte-level BPE, so no token
 * covers less than one UTF-8 byte, and a prompt of n bytes is at most n tokens (plus the
 * template's). Counting bytes is linear and allocation-free (`Buffer.byteLength`), and the
 * input is already bounded by the input limits.
 */
export function promptTokensBound(request: CompletionRequest): number {
  if (request.kind === 'fim') {
    return TOKENS_PER_REQUEST + Buffer.byteLength(request.prompt) + (request.suffix ? Buffer.byteLength(request.suffix) : 0);
  }
  let tokens = TOKENS_PER_REQUEST;
  for (const message of request.messages) tokens += TOKENS_PER_MESSAGE + Buffer.byteLength(message.content);
  return tokens;
}

/**
 * What a call of `request` may cost at most: its prompt bound plus its output cap
 * (`maxTokens`, else `defaultMaxOutputTokens`), in tokens and in micro-USD at the rates of
 * the current period. A model the price table lacks is priced at the highest rates it has.
 */
export function worstCase(request: CompletionRequest, prices: PriceTable, defaultMaxOutputTokens: number, at: Date): WorstCase {
  const prompt = promptTokensBound(request);
  const output = request.maxTokens ?? defaultMaxOutputTokens;
  const rates = ratesAt(prices[request.model] ?? dearest(prices), at);
  return { tokens: prompt + output, microUsd: Math.ceil(prompt * rates.cacheMiss + output * rates.output) };
}

/** A finished call's real figures: its tokens, and its estimated cost in micro-USD (list prices). */
export function actualCost(prices: PriceTable, model: string, usage: Usage, at: Date): WorstCase {
  const cost = estimateCostUsd(prices, model, usage, at) ?? estimateCostUsd({ [model]: dearest(prices) }, model, usage, at);
  return { tokens: usage.promptTokens + usage.completionTokens, microUsd: Math.ceil((cost?.usd ?? 0) * 1_000_000) };
}

/**
 * A call that ended early (failed or cut after part of its output streamed): the prompt
 * bound plus the output seen so far, counted as bytes (each at most a token), priced like
 * `worstCase`. DeepSeek bills what it generated; the gateway does not see its usage then.
 */
export function partialCost(request: CompletionRequest, outputBytes: number, prices: PriceTable, at: Date): WorstCase {
  const prompt = promptTokensBound(request);
  const rates = ratesAt(prices[request.model] ?? dearest(prices), at);
  return { tokens: prompt + outputBytes, microUsd: Math.ceil(prompt * rates.cacheMiss + outputBytes * rates.output) };
}

function ratesAt(model: ModelPrices, at: Date): ModelPrices['peak'] {
  return pricePeriod(at) === 'peak' ? model.peak : model.offPeak;
}

/** The highest rates of the table, field by field (peak and off-peak alike). */
function dearest(prices: PriceTable): ModelPrices {
  const max = { cacheHit: 0, cacheMiss: 0, output: 0 };
  for (const model of Object.values(prices)) {
    for (const rates of [model.peak, model.offPeak]) {
      max.cacheHit = Math.max(max.cacheHit, rates.cacheHit);
      max.cacheMiss = Math.max(max.cacheMiss, rates.cacheMiss);
      max.output = Math.max(max.output, rates.output);
    }
  }
  return { peak: max, offPeak: max };
}
