/**
 * DeepSeek's models and parameter bounds as data (deepseek-api.md §0, §2). The GraphQL
 * layer validates against this before any upstream call; nothing here does I/O.
 */

/** Models served today. */
export const CURRENT_MODELS = ['deepseek-flash', 'deepseek-v4-pro'] as const;

/** Legacy names DeepSeek still accepts and serves (and bills) as another model. */
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  'deepseek-v4-flash': 'deepseek-flash',
  'deepseek-v4-flash-vision-exp': 'deepseek-flash',
};

/** Names DeepSeek no longer serves, with the date they stopped working. */
export const RETIRED_MODELS: Readonly<Record<string, string>> = {
  'deepseek-chat': '2026-07-24',
  'deepseek-reasoner': '2026-07-24',
};

export const CHAT_LIMITS = {
  temperature: { min: 0, max: 2 },
  /** top_p is in (0, 1]: 0 itself is rejected. */
  topP: { exclusiveMin: 0, max: 1 },
  maxTokens: { min: 1, max: 393_216 },
  maxStopSequences: 16,
} as const;

export type ModelLookup =
  | { kind: 'current'; id: string }
  | { kind: 'alias'; id: string; servedAs: string }
  | { kind: 'retired'; id: string; retiredOn: string }
  | { kind: 'unknown'; id: string };

/** Classifies a model name the way DeepSeek would treat it. */
export function lookupModel(id: string): ModelLookup {
  if ((CURRENT_MODELS as readonly string[]).includes(id)) return { kind: 'current', id };
  // Own properties only: `constructor` or `__proto__` must not read as a model.
  const servedAs = Object.hasOwn(MODEL_ALIASES, id) ? MODEL_ALIASES[id] : undefined;
  if (servedAs !== undefined) return { kind: 'alias', id, servedAs };
  const retiredOn = Object.hasOwn(RETIRED_MODELS, id) ? RETIRED_MODELS[id] : undefined;
  if (retiredOn !== undefined) return { kind: 'retired', id, retiredOn };
  return { kind: 'unknown', id };
}
