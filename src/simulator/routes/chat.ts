import { simulateChat, tokenize, type SimulatedCompletion } from '../answer';
import { messageText, parseChatBody, type ChatParams } from '../params/chat';
import { streamChunks } from '../sse';
import { buildUsage, estimatePromptTokens, type WireUsage } from '../usage';
import { SYSTEM_FINGERPRINT, completionHead, jsonBody, type CompletionHead, type RouteContext } from './context';

/** `POST /chat/completions` (and `/v1/…`, `/beta/…`): validate, queue, answer or stream. */
export async function handleChat(ctx: RouteContext): Promise<void> {
  const params = parseChatBody(jsonBody(ctx.body), ctx.options.retiredModelStatus);
  const { ex, options } = ctx;
  if (!(await ex.queue(options.latencyMs, options.keepAliveIntervalMs, params.stream ? 'sse' : 'json'))) return;

  const completion = simulateChat(params);
  const promptTokens = estimatePromptTokens(params.messages.reduce((sum, m) => sum + messageText(m).length, 0));
  const hit = ctx.promptCache.hitTokens([params.model, params.messages], promptTokens);
  const usage = buildUsage(
    promptTokens,
    hit,
    completion.completionTokens + completion.reasoningTokens,
    params.thinking ? completion.reasoningTokens : undefined,
  );
  const head = completionHead(params.model);

  if (!params.stream) {
    const message: Record<string, string> = { role: 'assistant', content: completion.content };
    if (completion.reasoningContent !== null) message.reasoning_content = completion.reasoningContent;
    ex.sendJson(200, {
      id: head.id,
      object: 'chat.completion',
      created: head.created,
      model: head.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: completion.finishReason }],
      usage,
      system_fingerprint: SYSTEM_FINGERPRINT,
    });
    return;
  }
  const { chunks, finishIndex } = chatChunks(head, params, completion, usage, options.streamUsage);
  await streamChunks(ex, chunks, finishIndex, options.tokenDelayMs);
}

/**
 * The chunks of a chat stream in DeepSeek's field order: role chunk, reasoning deltas,
 * content deltas, finish chunk, then (include_usage) the usage chunk with `choices: []`.
 */
export function chatChunks(
  head: CompletionHead,
  params: ChatParams,
  completion: SimulatedCompletion,
  usage: WireUsage,
  streamUsage: 'separate' | 'on-finish',
): { chunks: unknown[]; finishIndex: number } {
  const chunk = (choices: unknown[], chunkUsage: WireUsage | null): Record<string, unknown> => ({
    id: head.id,
    object: 'chat.completion.chunk',
    created: head.created,
    model: head.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices,
    ...(params.includeUsage ? { usage: chunkUsage } : {}),
  });
  const delta = (d: Record<string, string>, finishReason: string | null = null): Record<string, unknown> => ({
    index: 0,
    delta: d,
    logprobs: null,
    finish_reason: finishReason,
  });

  const first: Record<string, string> = params.thinking ? { role: 'assistant', content: '', reasoning_content: '' } : { role: 'assistant', content: '' };
  const chunks = [chunk([delta(first)], null)];
  for (const token of tokenize(completion.reasoningContent ?? '')) chunks.push(chunk([delta({ reasoning_content: token })], null));
  for (const token of tokenize(completion.content)) chunks.push(chunk([delta({ content: token })], null));
  const finishIndex = chunks.length;
  const onFinish = params.includeUsage && streamUsage === 'on-finish';
  chunks.push(chunk([delta({ content: '' }, completion.finishReason)], onFinish ? usage : null));
  if (params.includeUsage && !onFinish) chunks.push(chunk([], usage));
  return { chunks, finishIndex };
}
