import { createHash } from 'node:crypto';
import { messageText, parseChatBody, type ChatParams } from './params/chat';
import { parseFimBody, type FimParams } from './params/fim';

/**
 * Deterministic answers: the same validated request always yields the same text, so tests
 * can predict it exactly. A "token" is a whitespace-separated word with its trailing
 * whitespace, so joining streamed deltas reproduces the content byte for byte.
 */

export interface SimulatedCompletion {
  /** The answer text (FIM: the completion, with the prompt in front when `echo` is set). */
  content: string;
  /** Thinking-mode reasoning, null when thinking is off (and always for FIM). */
  reasoningContent: string | null;
  finishReason: 'stop' | 'length';
  /** Generated answer tokens (FIM: the echoed prompt excluded). */
  completionTokens: number;
  reasoningTokens: number;
}

const ECHO_WORDS = 24;
const REASONING_STEPS = ['restate the question', 'draft a short answer', 'check it against the request', 'settle the wording'];
const STEPS_BY_EFFORT = { low: 1, high: 2, max: 4 } as const;

/** Splits text into tokens; `tokenize(s).join('') === s`. */
export function tokenize(text: string): string[] {
  return text.match(/^\s+|\S+\s*/g) ?? [];
}

function shortHash(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 8);
}

function words(text: string, count: number, fromEnd = false): string {
  const all = text.split(/\s+/).filter((w) => w.length > 0);
  return (fromEnd ? all.slice(-count) : all.slice(0, count)).join(' ');
}

/** Stop strings cut first (they end generation wherever they occur), then max_tokens. */
function finish(full: string, stop: string[], maxTokens: number | undefined): { text: string; reason: 'stop' | 'length' } {
  let text = full;
  const cuts = stop.filter((s) => s.length > 0).map((s) => text.indexOf(s)).filter((i) => i >= 0);
  if (cuts.length > 0) text = text.slice(0, Math.min(...cuts));
  const tokens = tokenize(text);
  if (maxTokens !== undefined && tokens.length > maxTokens) {
    return { text: tokens.slice(0, maxTokens).join('').trimEnd(), reason: 'length' };
  }
  return { text, reason: 'stop' };
}

export function simulateChat(params: ChatParams): SimulatedCompletion {
  const hash = shortHash([
    params.model,
    params.messages,
    params.thinking,
    params.temperature,
    params.topP,
    params.maxTokens ?? null,
    params.stop,
    params.responseFormat,
    params.reasoningEffort,
  ]);
  const lastUser = [...params.messages].reverse().find((m) => m.role === 'user');
  const echo = lastUser === undefined ? '(no user message)' : words(messageText(lastUser), ECHO_WORDS);
  const sentence =
    `Simulated ${params.model} answer ${hash}: you said "${echo}". ` +
    'This deterministic reply comes from the local DeepSeek simulator, not from a real model.';
  const full = params.responseFormat === 'json_object' ? JSON.stringify({ answer: sentence, model: params.model, id: hash }) : sentence;
  const { text, reason } = finish(full, params.stop, params.maxTokens);

  let reasoningContent: string | null = null;
  if (params.thinking) {
    const steps = REASONING_STEPS.slice(0, STEPS_BY_EFFORT[params.reasoningEffort]);
    reasoningContent =
      `Simulated reasoning ${hash} at ${params.reasoningEffort} effort about "${words(echo, 12)}". ` +
      steps.map((step, i) => `Step ${i + 1}: ${step}.`).join(' ');
  }
  return {
    content: text,
    reasoningContent,
    finishReason: reason,
    completionTokens: tokenize(text).length,
    reasoningTokens: reasoningContent === null ? 0 : tokenize(reasoningContent).length,
  };
}

export function simulateFim(params: FimParams): SimulatedCompletion {
  const hash = shortHash([params.model, params.prompt, params.suffix, params.temperature, params.topP, params.maxTokens ?? null, params.stop]);
  const before = params.suffix === null ? '' : ` before "${words(params.suffix, 6)}"`;
  const full = `simulated ${params.model} fill-in ${hash} after "${words(params.prompt, 6, true)}"${before}.`;
  const { text, reason } = finish(full, params.stop, params.maxTokens);
  return {
    content: params.echo ? params.prompt + text : text,
    reasoningContent: null,
    finishReason: reason,
    completionTokens: tokenize(text).length,
    reasoningTokens: 0,
  };
}

/**
 * Deterministic answer the simulator gives for a chat or FIM body, so tests can predict it
 * exactly. A body with `prompt` and no `messages` is FIM. Throws on a body the simulator
 * would reject.
 */
export function simulatedAnswer(body: Record<string, unknown>): { content: string; reasoningContent: string | null } {
  const isFim = body.messages === undefined && body.prompt !== undefined;
  const { content, reasoningContent } = isFim ? simulateFim(parseFimBody(body)) : simulateChat(parseChatBody(body));
  return { content, reasoningContent };
}
