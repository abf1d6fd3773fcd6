import type { CompletionResult, FinishReason } from './types';

/** DeepSeek as data: endpoints, headers, finish reasons, retryable statuses (deepseek-api.md). */

export const DEEPSEEK_BASE_URL = 'https://api.deepseek.com';

export const PATHS = {
  chat: '/chat/completions',
  fim: '/beta/completions',
  models: '/models',
  balance: '/user/balance',
} as const;

/** Sent on every response, success included; log it for support tickets. */
export const TRACE_ID_HEADER = 'x-ds-trace-id';

export const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' } as const;
export const SSE_HEADERS = { 'content-type': 'application/json', accept: 'text/event-stream' } as const;

// Models and parameter bounds live in `catalog.ts` (the GraphQL layer validates against it).
export { CURRENT_MODELS, MODEL_ALIASES, RETIRED_MODELS, CHAT_LIMITS, lookupModel, type ModelLookup } from './catalog';

export const FINISH_REASONS: readonly FinishReason[] = [
  'stop',
  'length',
  'content_filter',
  'tool_calls',
  'insufficient_system_resource',
];

/**
 * A completed call whose output was cut for lack of upstream resources: a success on the
 * wire that callers must not cache.
 */
export const UNCACHEABLE_FINISH_REASONS: readonly FinishReason[] = ['insufficient_system_resource'];

/**
 * Whether a finished completion may be kept and served again: the one rule every store
 * path (the coalescer's batch write, a finished stream) applies. Failures never get here.
 */
export function isStorable(result: Pick<CompletionResult, 'finishReason'>): boolean {
  return !UNCACHEABLE_FINISH_REASONS.includes(result.finishReason);
}

/** Statuses a call may be repeated after (with backoff); 400/401/402/422 never are. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);
