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
} from './common';

/** A validated `POST /beta/completions` (FIM) body. */
export interface FimParams {
  kind: 'fim';
  model: string;
  prompt: string;
  suffix: string | null;
  echo: boolean;
  temperature: number;
  topP: number;
  maxTokens?: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
}

/**
 * Validates a FIM body. Choices where DeepSeek is unconfirmed (deepseek-api.md §9.1):
 * an array `prompt` gets 400 (the deserializer's answer to a non-string), and
 * `max_tokens` accepts [0, 393216] (the FIM page says "integer >= 0").
 */
export function parseFimBody(raw: unknown, retiredModelStatus: 400 | 404 = 400): FimParams {
  const body = requireObject(raw);
  const model = parseModel(body, retiredModelStatus);
  const prompt = field(body, 'prompt');
  if (prompt === undefined) throw deserializeError('missing field `prompt`', 'prompt');
  if (typeof prompt !== 'string') throw deserializeError('prompt: invalid type, expected a string', 'prompt');
  const suffix = field(body, 'suffix') ?? null;
  if (suffix !== null && typeof suffix !== 'string') throw deserializeError('suffix: invalid type, expected a string', 'suffix');
  if (parseThinking(body) === true) throw invalidRequest('FIM completion is not supported in thinking mode', 'thinking');

  const echo = field(body, 'echo') ?? false;
  if (typeof echo !== 'boolean') throw deserializeError('echo: invalid type, expected a boolean', 'echo');
  const logprobs = field(body, 'logprobs');
  if (logprobs !== undefined && (typeof logprobs !== 'number' || !Number.isInteger(logprobs) || logprobs < 0 || logprobs > 20)) {
    throw invalidRequest('Invalid logprobs value, the valid range of logprobs is [0, 20]', 'logprobs');
  }
  if (echo && (suffix !== null || logprobs !== undefined)) {
    throw invalidRequest('echo cannot be used together with suffix or logprobs', 'echo');
  }

  const params: FimParams = {
    kind: 'fim',
    model,
    prompt,
    suffix,
    echo,
    temperature: parseTemperature(body),
    topP: parseTopP(body),
    maxTokens: parseMaxTokens(body, 0),
    stop: parseStop(body),
    ...parseStream(body),
  };
  checkPenalties(body);
  return params;
}
