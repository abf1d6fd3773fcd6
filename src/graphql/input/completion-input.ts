import { BadUserInputError, UnreachableCaseError } from '../../errors';
import { CHAT_LIMITS, CURRENT_MODELS, lookupModel } from '../../deepseek/catalog';
import type { ChatMessage, ChatRequest, FimRequest, ReasoningEffort, Role } from '../../deepseek/types';
import type { CachePolicy as CachePolicyName, CompletionInput, FimInput, MessageInput } from '../generated/types';

/** A validated request plus the cache policy it came with (the policy is not part of the key). */
export interface NormalisedInput<R> {
  request: R;
  policy: CachePolicyName;
}

const ROLE: Record<MessageInput['role'], Role> = { SYSTEM: 'system', USER: 'user', ASSISTANT: 'assistant' };
const EFFORT: Record<NonNullable<CompletionInput['reasoningEffort']>, ReasoningEffort> = {
  LOW: 'low',
  HIGH: 'high',
  MAX: 'max',
};

/**
 * Validates a `CompletionInput` and turns it into the canonical request the cache key and
 * the DeepSeek client use. Two inputs that make DeepSeek produce the same output normalise
 * to the same request: `prompt`+`system` equal the same `messages`; `thinking` defaults to
 * on (DeepSeek V4's default); in thinking mode `temperature` is dropped, because DeepSeek
 * ignores it there. `path` prefixes the field named in errors (e.g. `inputs[2]`).
 */
export function normaliseCompletionInput(
  input: CompletionInput,
  defaultModel: string,
  path = 'input',
): NormalisedInput<ChatRequest> {
  const messages = normaliseMessages(input, path);
  const model = normaliseModel(input.model ?? defaultModel, `${path}.model`);
  const thinking = input.thinking ?? true;

  const request: ChatRequest = { kind: 'chat', model, messages, thinking };
  if (thinking) {
    request.reasoningEffort = input.reasoningEffort ? EFFORT[input.reasoningEffort] : 'high';
  } else if (input.reasoningEffort) {
    throw new BadUserInputError('reasoningEffort applies only in thinking mode; drop it or set thinking: true.', `${path}.reasoningEffort`);
  }
  if (input.temperature != null && !thinking) request.temperature = checkTemperature(input.temperature, `${path}.temperature`);
  if (input.temperature != null && thinking) checkTemperature(input.temperature, `${path}.temperature`);
  if (input.topP != null) request.topP = checkTopP(input.topP, `${path}.topP`);
  if (input.maxTokens != null) request.maxTokens = checkMaxTokens(input.maxTokens, `${path}.maxTokens`);
  const stop = checkStop(input.stop, `${path}.stop`);
  if (stop) request.stop = stop;
  if (input.responseFormat === 'JSON_OBJECT') {
    const mentionsJson = messages.some((m) => m.role !== 'assistant' && /json/i.test(m.content));
    if (!mentionsJson) {
      throw new BadUserInputError(
        "responseFormat JSON_OBJECT needs the word 'json' in the system or a user message (DeepSeek rejects it otherwise).",
        `${path}.responseFormat`,
      );
    }
    request.responseFormat = 'json_object';
  }
  return { request, policy: input.cache ?? 'USE' };
}

/** Validates a `FimInput` (fill-in-the-middle; non-thinking only). */
export function normaliseFimInput(input: FimInput, defaultModel: string, path = 'input'): NormalisedInput<FimRequest> {
  if (input.prompt.length === 0) throw new BadUserInputError('prompt must not be empty.', `${path}.prompt`);
  const request: FimRequest = {
    kind: 'fim',
    model: normaliseModel(input.model ?? defaultModel, `${path}.model`),
    prompt: input.prompt,
  };
  if (input.suffix != null && input.suffix.length > 0) request.suffix = input.suffix;
  if (input.temperature != null) request.temperature = checkTemperature(input.temperature, `${path}.temperature`);
  if (input.topP != null) request.topP = checkTopP(input.topP, `${path}.topP`);
  if (input.maxTokens != null) request.maxTokens = checkMaxTokens(input.maxTokens, `${path}.maxTokens`);
  const stop = checkStop(input.stop, `${path}.stop`);
  if (stop) request.stop = stop;
  return { request, policy: input.cache ?? 'USE' };
}

function normaliseMessages(input: CompletionInput, path: string): ChatMessage[] {
  const hasPrompt = input.prompt != null;
  const hasMessages = input.messages != null;
  if (hasPrompt === hasMessages) {
    throw new BadUserInputError('Give exactly one of prompt or messages.', hasPrompt ? `${path}.messages` : `${path}.prompt`);
  }
  if (hasPrompt) {
    if (input.prompt!.trim().length === 0) throw new BadUserInputError('prompt must not be empty.', `${path}.prompt`);
    const messages: ChatMessage[] = [];
    if (input.system != null) {
      if (input.system.trim().length === 0) throw new BadUserInputError('system must not be empty when given.', `${path}.system`);
      messages.push({ role: 'system', content: input.system });
    }
    messages.push({ role: 'user', content: input.prompt! });
    return messages;
  }
  if (input.system != null) {
    throw new BadUserInputError('system goes with prompt; with messages, put a SYSTEM message first.', `${path}.system`);
  }
  const list = input.messages!;
  if (list.length === 0) throw new BadUserInputError('messages must hold at least one message.', `${path}.messages`);
  return list.map((message, index) => {
    if (message.content.trim().length === 0) {
      throw new BadUserInputError('message content must not be empty.', `${path}.messages[${index}].content`);
    }
    return { role: ROLE[message.role], content: message.content };
  });
}

function normaliseModel(name: string, field: string): string {
  const found = lookupModel(name);
  switch (found.kind) {
    case 'current':
      return found.id;
    case 'alias':
      // DeepSeek serves legacy names as the current model, so they share its cache entries.
      return found.servedAs;
    case 'retired':
      throw new BadUserInputError(
        `Model ${found.id} was retired by DeepSeek on ${found.retiredOn}; use one of ${CURRENT_MODELS.join(', ')}.`,
        field,
      );
    case 'unknown':
      throw new BadUserInputError(`Unknown model "${truncate(found.id)}"; use one of ${CURRENT_MODELS.join(', ')}.`, field);
    default:
      throw new UnreachableCaseError(found);
  }
}

function checkTemperature(value: number, field: string): number {
  const { min, max } = CHAT_LIMITS.temperature;
  if (!(value >= min && value <= max)) throw new BadUserInputError(`temperature must be from ${min} to ${max}.`, field);
  return value;
}

function checkTopP(value: number, field: string): number {
  const { exclusiveMin, max } = CHAT_LIMITS.topP;
  if (!(value > exclusiveMin && value <= max)) {
    throw new BadUserInputError(`topP must be greater than ${exclusiveMin} and at most ${max}.`, field);
  }
  return value;
}

function checkMaxTokens(value: number, field: string): number {
  const { min, max } = CHAT_LIMITS.maxTokens;
  if (!(value >= min && value <= max)) throw new BadUserInputError(`maxTokens must be from ${min} to ${max}.`, field);
  return value;
}

function checkStop(stop: readonly string[] | null | undefined, field: string): string[] | undefined {
  if (stop == null || stop.length === 0) return undefined;
  if (stop.length > CHAT_LIMITS.maxStopSequences) {
    throw new BadUserInputError(`stop takes at most ${CHAT_LIMITS.maxStopSequences} sequences.`, field);
  }
  stop.forEach((sequence, index) => {
    if (sequence.length === 0) throw new BadUserInputError('stop sequences must not be empty.', `${field}[${index}]`);
  });
  return [...stop];
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}
