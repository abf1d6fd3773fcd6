import { invalidRequest } from '../errors';
import {
  checkPenalties,
  deserializeError,
  field,
  parseMaxTokens,
  parseModel,
  parseStop,
  parseStream,
  parseTemperature,
  parseThinking,
  parseTopP,
  requireObject,
  type Body,
} from './common';

export type ReasoningEffort = 'low' | 'high' | 'max';

/** A validated `POST /chat/completions` body: every field that shapes the simulated answer. */
export interface ChatParams {
  kind: 'chat';
  /** Served model id (legacy aliases resolved). */
  model: string;
  messages: Body[];
  thinking: boolean;
  reasoningEffort: ReasoningEffort;
  temperature: number;
  topP: number;
  maxTokens?: number;
  stop: string[];
  responseFormat: 'text' | 'json_object';
  stream: boolean;
  includeUsage: boolean;
}

/** The 2026-11 mapping of other effort names (deepseek-api.md §2.1). */
const EFFORTS: Readonly<Record<string, ReasoningEffort>> = {
  low: 'low',
  high: 'high',
  max: 'max',
  minimal: 'low',
  medium: 'high',
  xhigh: 'high',
  ultra: 'max',
};

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);
const USER_ID = /^[a-zA-Z0-9_-]+$/;

/** The text of a message: a string, or the `text` parts of a parts array. */
export function messageText(message: Body): string {
  const content = message.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      const text = typeof part === 'object' && part !== null ? (part as Body).text : undefined;
      return typeof text === 'string' ? text : '';
    })
    .join('\n');
}

function parseMessages(body: Body): Body[] {
  const messages = field(body, 'messages');
  if (messages === undefined) throw deserializeError('missing field `messages`', 'messages');
  if (!Array.isArray(messages)) throw deserializeError('messages: invalid type, expected a sequence', 'messages');
  if (messages.length === 0) throw invalidRequest('Empty input messages', 'messages');
  messages.forEach((message: unknown, index) => {
    const at = `messages[${index}]`;
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw deserializeError(`${at}: invalid type, expected an object`, 'messages');
    }
    const { role, content } = message as Body;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw deserializeError(`${at}: unknown variant, expected one of \`system\`, \`user\`, \`assistant\`, \`tool\``, 'messages');
    }
    const nullable = role === 'assistant';
    const ok = typeof content === 'string' || Array.isArray(content) || (nullable && (content === null || content === undefined));
    if (!ok) throw deserializeError(`${at}: missing or invalid field \`content\``, 'messages');
  });
  return messages as Body[];
}

function parseEffort(body: Body): ReasoningEffort {
  const value = field(body, 'reasoning_effort');
  if (value === undefined) return 'high';
  const effort = typeof value === 'string' ? EFFORTS[value] : undefined;
  if (effort === undefined) {
    throw invalidRequest('Invalid reasoning_effort value, expected one of low, high, max', 'reasoning_effort');
  }
  return effort;
}

function parseResponseFormat(body: Body, messages: Body[]): 'text' | 'json_object' {
  const value = field(body, 'response_format');
  if (value === undefined) return 'text';
  const type = typeof value === 'object' && !Array.isArray(value) ? (value as Body).type : undefined;
  if (type !== 'text' && type !== 'json_object') {
    throw deserializeError('response_format.type: unknown variant, expected `text` or `json_object`', 'response_format');
  }
  const mentionsJson = messages.some((m) => (m.role === 'system' || m.role === 'user') && /json/i.test(messageText(m)));
  if (type === 'json_object' && !mentionsJson) {
    throw invalidRequest("Prompt must contain the word 'json' in some form to use 'response_format' of type 'json_object'.", 'response_format');
  }
  return type;
}

/** Fields the simulator does not act on but validates as DeepSeek does. */
function checkAccepted(body: Body, thinking: boolean, messages: Body[]): void {
  const userId = field(body, 'user_id');
  if (userId !== undefined && (typeof userId !== 'string' || userId.length > 512 || !USER_ID.test(userId))) {
    throw invalidRequest(`Invalid 'user_id': string does not match pattern. Expected a string that matches the pattern '${USER_ID.source}'.`, 'user_id');
  }
  const logprobs = field(body, 'logprobs');
  const top = field(body, 'top_logprobs');
  if (top !== undefined && (typeof top !== 'number' || !Number.isInteger(top) || top < 0 || top > 20 || logprobs !== true)) {
    throw invalidRequest('Invalid top_logprobs value: an integer from 0 to 20 that requires logprobs = true', 'top_logprobs');
  }
  const tools = field(body, 'tools');
  if (tools !== undefined && (!Array.isArray(tools) || tools.length > 128)) {
    throw invalidRequest('Invalid tools value: at most 128 tools are allowed', 'tools');
  }
  const toolChoice = field(body, 'tool_choice');
  if (thinking && (toolChoice === 'required' || (typeof toolChoice === 'object' && toolChoice !== null))) {
    throw invalidRequest('tool_choice "required" or a named function is not supported in thinking mode', 'tool_choice');
  }
  const missingPassback = messages.some(
    (m) => m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0 && typeof m.reasoning_content !== 'string',
  );
  if (thinking && missingPassback) {
    throw invalidRequest('The `reasoning_content` in the thinking mode must be passed back to the API.', 'messages');
  }
}

/** Validates a chat body the way DeepSeek does; throws `SimError` with its 4xx answer. */
export function parseChatBody(raw: unknown, retiredModelStatus: 400 | 404 = 400): ChatParams {
  const body = requireObject(raw);
  const model = parseModel(body, retiredModelStatus);
  const messages = parseMessages(body);
  const thinking = parseThinking(body) ?? true;
  const params: ChatParams = {
    kind: 'chat',
    model,
    messages,
    thinking,
    reasoningEffort: parseEffort(body),
    temperature: parseTemperature(body),
    topP: parseTopP(body),
    maxTokens: parseMaxTokens(body, 1),
    stop: parseStop(body),
    responseFormat: parseResponseFormat(body, messages),
    ...parseStream(body),
  };
  checkPenalties(body);
  checkAccepted(body, thinking, messages);
  return params;
}
