import type { ChatRequest, FimRequest } from './types';
import type { WireChatRequest, WireFimRequest } from './wire';

/** Drops keys whose value is undefined, so the wire body only says what was asked. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** `ChatRequest` → the body of `POST /chat/completions`. */
export function toWireChatRequest(request: ChatRequest, stream: boolean): WireChatRequest {
  return compact<WireChatRequest>({
    model: request.model,
    messages: request.messages.map((message) => ({ role: message.role, content: message.content })),
    thinking: request.thinking === undefined ? undefined : { type: request.thinking ? 'enabled' : 'disabled' },
    reasoning_effort: request.reasoningEffort,
    temperature: request.temperature,
    top_p: request.topP,
    max_tokens: request.maxTokens,
    stop: request.stop,
    response_format: request.responseFormat === undefined ? undefined : { type: request.responseFormat },
    stream,
    stream_options: stream ? { include_usage: true } : undefined,
  });
}

/**
 * `FimRequest` → the body of `POST /beta/completions`. A stream asks for usage like a chat
 * stream does: DeepSeek puts it on a FIM stream's last chunk anyway, and `stream_options`
 * is allowed with `stream: true` (only without it is it a 400; deepseek-api.md §2.2).
 */
export function toWireFimRequest(request: FimRequest, stream: boolean): WireFimRequest {
  return compact<WireFimRequest>({
    model: request.model,
    prompt: request.prompt,
    suffix: request.suffix,
    max_tokens: request.maxTokens,
    temperature: request.temperature,
    top_p: request.topP,
    stop: request.stop,
    stream,
    stream_options: stream ? { include_usage: true } : undefined,
  });
}
