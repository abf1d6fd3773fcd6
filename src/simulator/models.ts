/** Model ids, aliases and limits as documented for 2026-11 (deepseek-api.md §0, §5, §6). */

export const MAX_OUTPUT_TOKENS = 393_216;
export const CONTEXT_WINDOW = 1_048_576;

/** One `data` entry of `GET /models` (2026-11 metadata shape). */
export interface SimulatedModel {
  id: string;
  object: 'model';
  owned_by: string;
  name: string;
  context_window: number;
  max_output_tokens: number;
  input_modalities: string[];
  output_modalities: string[];
  effort: { supported_levels: string[]; default_level: string };
  api_capabilities: { anthropic_messages: { system_prompt_update: string } };
}

function model(id: string, name: string, inputModalities: string[]): SimulatedModel {
  return {
    id,
    object: 'model',
    owned_by: 'deepseek',
    name,
    context_window: CONTEXT_WINDOW,
    max_output_tokens: MAX_OUTPUT_TOKENS,
    input_modalities: inputModalities,
    output_modalities: ['text'],
    effort: { supported_levels: ['low', 'high', 'max'], default_level: 'high' },
    api_capabilities: { anthropic_messages: { system_prompt_update: 'in-history' } },
  };
}

export const DEFAULT_SIMULATOR_MODELS: readonly SimulatedModel[] = Object.freeze([
  model('deepseek-flash', 'DeepSeek-V4.1-Flash', ['text', 'image']),
  model('deepseek-v4-pro', 'DeepSeek-V4-Pro-0813', ['text']),
]);

/** Legacy names still accepted; served and reported as the model they map to. */
const LEGACY_ALIASES: Readonly<Record<string, string>> = {
  'deepseek-v4-flash': 'deepseek-flash',
  'deepseek-v4-flash-vision-exp': 'deepseek-flash',
};

/** Stopped working 2026-07-24; the status they get is configurable (deepseek-api.md §9.9). */
const RETIRED = new Set(['deepseek-chat', 'deepseek-reasoner']);

export type ModelLookup = { kind: 'served'; id: string } | { kind: 'retired' } | { kind: 'unknown' };

export function resolveModel(name: string): ModelLookup {
  if (DEFAULT_SIMULATOR_MODELS.some((m) => m.id === name)) return { kind: 'served', id: name };
  const alias = LEGACY_ALIASES[name];
  if (alias !== undefined) return { kind: 'served', id: alias };
  return RETIRED.has(name) ? { kind: 'retired' } : { kind: 'unknown' };
}
