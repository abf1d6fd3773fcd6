import { badStreamEvent, errorInBody, streamTruncated } from './classify-error';
import { toCreatedAt, toFinishReason, toUsage } from './response';
import type { CompletionResult, StreamEvent, Usage } from './types';

const ZERO_USAGE: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cacheHitTokens: 0, cacheMissTokens: 0 };

type Json = Record<string, unknown>;

/** The text one chunk's first choice adds; `reasoning` is undefined when the chunk names none. */
interface ChoiceText {
  content: string;
  reasoning: string | undefined;
}

/** `chat.completion.chunk`: text in `choices[0].delta.content` / `.reasoning_content`. */
function chatText(choice: Json): ChoiceText {
  const delta = (choice.delta ?? {}) as Json;
  return {
    content: typeof delta.content === 'string' ? delta.content : '',
    reasoning: typeof delta.reasoning_content === 'string' ? delta.reasoning_content : undefined,
  };
}

/** FIM `text_completion` chunk: text in `choices[0].text`; FIM never reasons. */
function fimText(choice: Json): ChoiceText {
  return { content: typeof choice.text === 'string' ? choice.text : '', reasoning: undefined };
}

/**
 * Folds a stream's chunks into deltas and, at the end, one `CompletionResult`. Usage may
 * ride on the finish chunk or on a trailing `choices: []` chunk (both are seen; a FIM
 * stream always puts it on its last one-choice chunk); the last one wins. Only where a
 * chunk keeps its text differs between chat and FIM (`ChatStreamAssembler`, `FimStreamAssembler`).
 */
export class StreamAssembler {
  readonly #content: string[] = [];
  readonly #reasoning: string[] = [];
  #sawReasoning = false;
  #finishReason?: string;
  #usage?: Usage;
  #id = '';
  #model: string;
  #created?: number;

  constructor(
    private readonly textOf: (choice: Json) => ChoiceText,
    model: string,
    private readonly traceId?: string,
  ) {
    this.#model = model;
  }

  /** Takes one SSE data payload (not `[DONE]`); returns a delta when it carries text. */
  add(data: string): StreamEvent | undefined {
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      throw badStreamEvent('not JSON', this.traceId);
    }
    if (typeof chunk !== 'object' || chunk === null) throw badStreamEvent('not an object', this.traceId);
    const json = chunk as Json;
    // Mid-stream nothing is retried, whatever the error says.
    if ('error' in json && json.error) throw errorInBody(json.error, this.traceId, { midStream: true });
    if (typeof json.id === 'string') this.#id = json.id;
    if (typeof json.model === 'string') this.#model = json.model;
    if (typeof json.created === 'number') this.#created = json.created;
    const usage = toUsage(json.usage);
    if (usage) this.#usage = usage;

    if (!Array.isArray(json.choices)) throw badStreamEvent('missing choices', this.traceId);
    const choice = json.choices[0] as Json | undefined;
    if (!choice) return undefined;
    if (typeof choice.finish_reason === 'string') this.#finishReason = choice.finish_reason;
    const { content, reasoning } = this.textOf(choice);
    if (reasoning !== undefined) this.#sawReasoning = true;
    const reasoningContent = reasoning ?? '';
    if (content) this.#content.push(content);
    if (reasoningContent) this.#reasoning.push(reasoningContent);
    return content || reasoningContent ? { type: 'delta', content, reasoningContent } : undefined;
  }

  /** The assembled result; a stream that never named its finish reason was cut short. */
  finish(): CompletionResult {
    if (this.#finishReason === undefined) throw streamTruncated(this.traceId);
    return {
      model: this.#model,
      content: this.#content.join(''),
      reasoningContent: this.#sawReasoning ? this.#reasoning.join('') : null,
      finishReason: toFinishReason(this.#finishReason),
      usage: this.#usage ?? ZERO_USAGE,
      createdAt: toCreatedAt(this.#created),
      upstreamId: this.#id,
      ...(this.traceId ? { traceId: this.traceId } : {}),
    };
  }
}

/** Assembles a chat stream (`POST /chat/completions`, `stream: true`). */
export class ChatStreamAssembler extends StreamAssembler {
  constructor(model: string, traceId?: string) {
    super(chatText, model, traceId);
  }
}

/** Assembles a FIM stream (`POST /beta/completions`, `stream: true`). */
export class FimStreamAssembler extends StreamAssembler {
  constructor(model: string, traceId?: string) {
    super(fimText, model, traceId);
  }
}
