import type { Context } from '@opentelemetry/api';
import type { AbortSignalLike } from '../lib/abort';

/**
 * Provider-neutral shapes the rest of the service uses. The DeepSeek wire format
 * (snake_case JSON) lives only in `src/deepseek/wire.ts` and the client that maps it.
 */

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

export type ReasoningEffort = 'low' | 'high' | 'max';
export type ResponseFormat = 'text' | 'json_object';

/** A normalised chat request: every field that changes the output, nothing else. */
export interface ChatRequest {
  kind: 'chat';
  model: string;
  messages: ChatMessage[];
  /** undefined = the model's default (thinking is on by default on DeepSeek V4). */
  thinking?: boolean;
  reasoningEffort?: ReasoningEffort;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  stop?: string[];
  responseFormat?: ResponseFormat;
}

/** A normalised fill-in-the-middle request (`POST /beta/completions`). */
export interface FimRequest {
  kind: 'fim';
  model: string;
  prompt: string;
  suffix?: string;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  stop?: string[];
}

export type CompletionRequest = ChatRequest | FimRequest;

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'insufficient_system_resource';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cacheHitTokens: number;
  cacheMissTokens: number;
  reasoningTokens?: number;
}

/** One finished completion as produced by DeepSeek (what the cache stores). */
export interface CompletionResult {
  model: string;
  content: string;
  reasoningContent: string | null;
  finishReason: FinishReason;
  usage: Usage;
  /** ISO-8601 time the upstream produced it (from the response's `created`). */
  createdAt: string;
  /** DeepSeek's response id (a UUID). */
  upstreamId: string;
  /** DeepSeek's `x-ds-trace-id` for the call that produced it. */
  traceId?: string;
}

/** One event of a streamed completion, already decoded from SSE. */
export type StreamEvent =
  | { type: 'delta'; content: string; reasoningContent: string }
  | { type: 'finish'; result: CompletionResult };

export interface ModelInfo {
  id: string;
  ownedBy: string;
  name?: string;
  contextWindow?: number;
  maxOutputTokens?: number;
  inputModalities?: string[];
  outputModalities?: string[];
  reasoningEffortLevels?: string[];
  defaultReasoningEffort?: string;
}

export interface BalanceInfo {
  currency: string;
  totalBalance: string;
  grantedBalance: string;
  toppedUpBalance: string;
}

export interface Balance {
  isAvailable: boolean;
  balances: BalanceInfo[];
}

/** Per-call options every client method accepts. */
export interface CallOptions {
  /** Aborts the upstream request (all waiters gone, client disconnected, shutdown). */
  signal?: AbortSignalLike;
  /**
   * Parent of the call's spans and source of its `traceparent` (the operation that asked);
   * default: the active context. Explicit because a call started by a shared batch must
   * not inherit whichever request happened to open the batch.
   */
  traceContext?: Context;
}

/** What the layers above need from DeepSeek. */
export interface DeepSeekApi {
  chat(request: ChatRequest, options?: CallOptions): Promise<CompletionResult>;
  fim(request: FimRequest, options?: CallOptions): Promise<CompletionResult>;
  /** Dispatches on `request.kind`. */
  complete(request: CompletionRequest, options?: CallOptions): Promise<CompletionResult>;
  chatStream(request: ChatRequest, options?: CallOptions): AsyncIterable<StreamEvent>;
  fimStream(request: FimRequest, options?: CallOptions): AsyncIterable<StreamEvent>;
  /** Streams either kind, dispatching on `request.kind`. */
  completeStream(request: CompletionRequest, options?: CallOptions): AsyncIterable<StreamEvent>;
  models(options?: CallOptions): Promise<ModelInfo[]>;
  balance(options?: CallOptions): Promise<Balance>;
}
