import { simulateFim, tokenize } from '../answer';
import { parseFimBody } from '../params/fim';
import { streamChunks } from '../sse';
import { buildUsage, estimatePromptTokens } from '../usage';
import { SYSTEM_FINGERPRINT, completionHead, jsonBody, type RouteContext } from './context';

/** `POST /beta/completions`: fill-in-the-middle, non-thinking only. */
export async function handleFim(ctx: RouteContext): Promise<void> {
  const params = parseFimBody(jsonBody(ctx.body), ctx.options.retiredModelStatus);
  const { ex, options } = ctx;
  if (!(await ex.queue(options.latencyMs, options.keepAliveIntervalMs, params.stream ? 'sse' : 'json'))) return;

  const completion = simulateFim(params);
  const promptTokens = estimatePromptTokens(params.prompt.length + (params.suffix ?? '').length);
  const hit = ctx.promptCache.hitTokens([params.model, params.prompt, params.suffix], promptTokens);
  const usage = buildUsage(promptTokens, hit, completion.completionTokens);
  const head = completionHead(params.model);
  const envelope = (text: string, finishReason: string | null): Record<string, unknown> => ({
    id: head.id,
    object: 'text_completion',
    created: head.created,
    model: head.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
  });

  if (!params.stream) {
    ex.sendJson(200, { ...envelope(completion.content, completion.finishReason), usage });
    return;
  }
  // Per the 2026-11 page the last chunk before [DONE] always carries usage, riding on a
  // final one-choice chunk with no text; other chunks say "usage": null with include_usage.
  const chunks: unknown[] = tokenize(completion.content).map((text) => ({
    ...envelope(text, null),
    ...(params.includeUsage ? { usage: null } : {}),
  }));
  const finishIndex = chunks.length;
  chunks.push({ ...envelope('', completion.finishReason), usage });
  await streamChunks(ex, chunks, finishIndex, options.tokenDelayMs);
}
