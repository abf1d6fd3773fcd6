/**
 * DeepSeek's snake_case JSON, as sent and received (see docs/deepseek-api.md §2–§5).
 * Only this folder sees these shapes; `types.ts` holds what the rest of the service uses.
 * Response types mark every field optional where DeepSeek may leave it out: the client
 * validates before it maps.
 */

export interface WireChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface WireChatRequest {
  model: string;
  messages: WireChatMessage[];
  thinking?: { type: 'enabled' | 'disabled' };
  reasoning_effort?: 'low' | 'high' | 'max';
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  stop?: string[];
  response_format?: { type: 'text' | 'json_object' };
  stream: boolean;
  stream_options?: { include_usage: boolean };
}

export interface WireFimRequest {
  model: string;
  prompt: string;
  suffix?: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  stop?: string[];
  stream: boolean;
  /** Only with `stream: true` (DeepSeek answers 400 otherwise). */
  stream_options?: { include_usage: boolean };
}

export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_cache_hit_tokens?: number;
  prompt_cache_miss_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

export interface WireChatChoice {
  index: number;
  message: { role: string; content: string | null; reasoning_content?: string | null };
  finish_reason: string | null;
}

export interface WireChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: WireChatChoice[];
  usage: WireUsage;
  system_fingerprint?: string;
}

export interface WireFimChoice {
  index: number;
  text: string;
  finish_reason: string | null;
}

export interface WireFimCompletion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: WireFimChoice[];
  usage: WireUsage;
}

/** A FIM stream chunk: `object` stays `text_completion`; usage rides on the last chunk. */
export interface WireFimChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: WireFimChoice[];
  usage?: WireUsage | null;
}

export interface WireChatChunkChoice {
  index: number;
  delta: { role?: string; content?: string | null; reasoning_content?: string | null };
  finish_reason: string | null;
}

export interface WireChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: WireChatChunkChoice[];
  usage?: WireUsage | null;
}

export interface WireModel {
  id: string;
  object: 'model';
  owned_by: string;
  name?: string;
  context_window?: number;
  max_output_tokens?: number;
  input_modalities?: string[];
  output_modalities?: string[];
  effort?: { supported_levels?: string[]; default_level?: string };
}

export interface WireModelList {
  object: 'list';
  data: WireModel[];
}

export interface WireBalanceInfo {
  currency: string;
  total_balance: string;
  granted_balance: string;
  topped_up_balance: string;
}

export interface WireBalance {
  is_available: boolean;
  balance_infos: WireBalanceInfo[];
}

export interface WireErrorBody {
  error: { message?: string; type?: string; param?: string | null; code?: string | null };
}
