import { errorInBody, invalidResponse } from './classify-error';
import { FINISH_REASONS } from './provider';
import type { Balance, CompletionResult, FinishReason, ModelInfo, Usage } from './types';
import type { WireUsage } from './wire';

/**
 * Validates DeepSeek's response JSON and maps it to the provider-neutral types. Anything
 * missing that a result needs is a retryable `invalid-response` (UPSTREAM_UNAVAILABLE once
 * mapped), never a half result.
 */

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? (value as string[]) : undefined;
}

/** DeepSeek may add finish reasons; an unknown one is reported as a plain stop. */
export function toFinishReason(value: string): FinishReason {
  return (FINISH_REASONS as readonly string[]).includes(value) ? (value as FinishReason) : 'stop';
}

/** The last `created` second seen and its ISO form: answers in the same second share it. */
let lastCreated: { seconds: number; iso: string } | undefined;

/**
 * `created` (Unix seconds) as an ISO-8601 time. Missing, malformed or out of the range a
 * `Date` holds, it is the time of reading (not a failed answer).
 */
export function toCreatedAt(created: unknown): string {
  if (!isCount(created)) return new Date().toISOString();
  if (lastCreated?.seconds !== created) {
    const at = new Date(created * 1000);
    if (Number.isNaN(at.getTime())) return new Date().toISOString();
    lastCreated = { seconds: created, iso: at.toISOString() };
  }
  return lastCreated.iso;
}

/** Maps `usage`; undefined when it is missing or malformed. */
export function toUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const usage = value as Partial<WireUsage>;
  if (!isCount(usage.prompt_tokens) || !isCount(usage.completion_tokens)) return undefined;
  const total = isCount(usage.total_tokens) ? usage.total_tokens : usage.prompt_tokens + usage.completion_tokens;
  const hit = isCount(usage.prompt_cache_hit_tokens)
    ? usage.prompt_cache_hit_tokens
    : isCount(usage.prompt_tokens_details?.cached_tokens)
      ? usage.prompt_tokens_details.cached_tokens
      : 0;
  const miss = isCount(usage.prompt_cache_miss_tokens) ? usage.prompt_cache_miss_tokens : usage.prompt_tokens - hit;
  const reasoning = usage.completion_tokens_details?.reasoning_tokens;
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    totalTokens: total,
    cacheHitTokens: hit,
    cacheMissTokens: miss,
    ...(isCount(reasoning) ? { reasoningTokens: reasoning } : {}),
  };
}

interface Envelope {
  id: string;
  model: string;
  createdAt: string;
  choice: Json;
  finishReason: FinishReason;
  usage: Usage;
}

function envelope(json: unknown, traceId: string | undefined): Envelope {
  if (!isRecord(json)) throw invalidResponse('not an object', traceId);
  if (isRecord(json.error)) throw errorInBody(json.error, traceId);
  const choices = json.choices;
  if (!Array.isArray(choices) || choices.length === 0 || !isRecord(choices[0])) {
    throw invalidResponse('missing choices', traceId);
  }
  const choice = choices[0];
  if (typeof choice.finish_reason !== 'string') throw invalidResponse('missing finish_reason', traceId);
  const usage = toUsage(json.usage);
  if (!usage) throw invalidResponse('missing usage', traceId);
  if (typeof json.id !== 'string' || typeof json.model !== 'string') throw invalidResponse('missing id or model', traceId);
  return {
    id: json.id,
    model: json.model,
    createdAt: toCreatedAt(json.created),
    choice,
    finishReason: toFinishReason(choice.finish_reason),
    usage,
  };
}

/** A `chat.completion` → `CompletionResult`. */
export function fromWireChatCompletion(json: unknown, traceId: string | undefined): CompletionResult {
  const { id, model, createdAt, choice, finishReason, usage } = envelope(json, traceId);
  const message = choice.message;
  if (!isRecord(message)) throw invalidResponse('missing message', traceId);
  if (message.content !== null && typeof message.content !== 'string') throw invalidResponse('bad content', traceId);
  const reasoning = message.reasoning_content;
  return {
    model,
    content: message.content ?? '',
    reasoningContent: typeof reasoning === 'string' ? reasoning : null,
    finishReason,
    usage,
    createdAt,
    upstreamId: id,
    ...(traceId ? { traceId } : {}),
  };
}

/** A FIM `text_completion` → `CompletionResult` (the text is `choices[0].text`). */
export function fromWireFimCompletion(json: unknown, traceId: string | undefined): CompletionResult {
  const { id, model, createdAt, choice, finishReason, usage } = envelope(json, traceId);
  if (typeof choice.text !== 'string') throw invalidResponse('missing text', traceId);
  return {
    model,
    content: choice.text,
    reasoningContent: null,
    finishReason,
    usage,
    createdAt,
    upstreamId: id,
    ...(traceId ? { traceId } : {}),
  };
}

/** `GET /models` → `ModelInfo[]` (metadata fields only when DeepSeek sends them). */
export function fromWireModelList(json: unknown, traceId: string | undefined): ModelInfo[] {
  if (!isRecord(json) || !Array.isArray(json.data)) throw invalidResponse('missing data', traceId);
  return json.data.filter(isRecord).flatMap((model): ModelInfo[] => {
    if (typeof model.id !== 'string') return [];
    const effort = isRecord(model.effort) ? model.effort : {};
    const info: ModelInfo = {
      id: model.id,
      ownedBy: optionalString(model.owned_by) ?? 'deepseek',
      name: optionalString(model.name),
      contextWindow: isCount(model.context_window) ? model.context_window : undefined,
      maxOutputTokens: isCount(model.max_output_tokens) ? model.max_output_tokens : undefined,
      inputModalities: stringArray(model.input_modalities),
      outputModalities: stringArray(model.output_modalities),
      reasoningEffortLevels: stringArray(effort.supported_levels),
      defaultReasoningEffort: optionalString(effort.default_level),
    };
    return [Object.fromEntries(Object.entries(info).filter(([, v]) => v !== undefined)) as ModelInfo];
  });
}

/** `GET /user/balance` → `Balance` (amounts stay decimal strings, as DeepSeek sends them). */
export function fromWireBalance(json: unknown, traceId: string | undefined): Balance {
  if (!isRecord(json) || typeof json.is_available !== 'boolean' || !Array.isArray(json.balance_infos)) {
    throw invalidResponse('missing balance fields', traceId);
  }
  return {
    isAvailable: json.is_available,
    balances: json.balance_infos.filter(isRecord).map((info) => ({
      currency: String(info.currency ?? ''),
      totalBalance: String(info.total_balance ?? '0'),
      grantedBalance: String(info.granted_balance ?? '0'),
      toppedUpBalance: String(info.topped_up_balance ?? '0'),
    })),
  };
}
