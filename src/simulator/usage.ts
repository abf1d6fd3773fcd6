import { createHash } from 'node:crypto';

/** The `usage` object of chat and FIM responses (deepseek-api.md §3.1). */
export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  prompt_cache_hit_tokens: number;
  prompt_cache_miss_tokens: number;
  completion_tokens_details?: { reasoning_tokens: number };
}

/** DeepSeek's rule of thumb: 1 English character ≈ 0.3 token. */
export function estimatePromptTokens(chars: number): number {
  return Math.max(1, Math.ceil(chars * 0.3));
}

const CACHE_UNIT = 64;
const MAX_REMEMBERED = 10_000;

/**
 * Context-cache stand-in, owned by one simulator: a prompt seen before hits in whole
 * 64-token units; the first sight of a prompt is all miss. Oldest prompts are forgotten
 * first so memory stays bounded.
 */
export class PromptCache {
  private readonly seen = new Set<string>();

  hitTokens(prompt: unknown, promptTokens: number): number {
    const key = createHash('sha256').update(JSON.stringify(prompt)).digest('base64');
    if (this.seen.has(key)) return Math.floor(promptTokens / CACHE_UNIT) * CACHE_UNIT;
    this.seen.add(key);
    if (this.seen.size > MAX_REMEMBERED) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return 0;
  }
}

export function buildUsage(promptTokens: number, hitTokens: number, completionTokens: number, reasoningTokens?: number): WireUsage {
  const usage: WireUsage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: hitTokens },
    prompt_cache_hit_tokens: hitTokens,
    prompt_cache_miss_tokens: promptTokens - hitTokens,
  };
  // Absent when thinking is off, as seen live (2026-10).
  if (reasoningTokens !== undefined) usage.completion_tokens_details = { reasoning_tokens: reasoningTokens };
  return usage;
}
