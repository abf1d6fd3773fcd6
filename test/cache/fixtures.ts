import type { Config } from '../../src/config';
import type { CompletionResult, FinishReason } from '../../src/deepseek/types';

/** A finished completion as the DeepSeek client would return it. */
export function completionResult(content: string, finishReason: FinishReason = 'stop'): CompletionResult {
  return {
    model: 'deepseek-flash',
    content,
    reasoningContent: null,
    finishReason,
    usage: { promptTokens: 5, completionTokens: 7, totalTokens: 12, cacheHitTokens: 0, cacheMissTokens: 5 },
    createdAt: '2026-01-01T00:00:00.000Z',
    upstreamId: '5f0c8a6e-0000-4000-8000-000000000000',
  };
}

export function cacheConfig(overrides: Partial<Config['cache']> = {}): Config['cache'] {
  return { maxEntries: 1000, ttlSeconds: 60, storeTimeoutMs: 250, namespace: 'test', scope: 'global', breakerThreshold: 3, breakerCooldownMs: 200, ...overrides };
}
