import { SimError, invalidRequest } from '../errors';
import { MAX_OUTPUT_TOKENS, resolveModel } from '../models';

/** Request-field checks shared by chat and FIM, with DeepSeek's messages where known. */

export type Body = Record<string, unknown>;

export const MAX_STOP_STRINGS = 16;

/** The message shape of DeepSeek's (axum) body deserializer. */
export function deserializeError(detail: string, param: string | null = null): SimError {
  return invalidRequest(`Failed to deserialize the JSON body into the target type: ${detail}`, param);
}

export function requireObject(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw deserializeError('invalid type, expected a JSON object');
  }
  return body as Body;
}

/** A field that is absent or null counts as unset, as OpenAI clients send explicit nulls. */
export function field(body: Body, name: string): unknown {
  return body[name] ?? undefined;
}

/** Resolves the served model id; legacy aliases map to their successor. */
export function parseModel(body: Body, retiredStatus: 400 | 404): string {
  const name = field(body, 'model');
  if (name === undefined) throw deserializeError('missing field `model`', 'model');
  if (typeof name !== 'string') throw deserializeError('model: invalid type, expected a string', 'model');
  const lookup = resolveModel(name);
  switch (lookup.kind) {
    case 'served':
      return lookup.id;
    case 'retired':
      return retired(name, retiredStatus);
    case 'unknown':
      throw invalidRequest('Model Not Exist', 'model');
  }
}

function retired(name: string, status: 400 | 404): never {
  const message = `The model \`${name}\` has been retired (2026-07-24); use deepseek-flash or deepseek-v4-pro`;
  throw new SimError(status, message, 'invalid_request_error', 'invalid_request_error', 'model');
}

function number(body: Body, name: string): number | undefined {
  const value = field(body, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw deserializeError(`${name}: invalid type, expected a number`, name);
  }
  return value;
}

export function parseTemperature(body: Body): number {
  const value = number(body, 'temperature') ?? 1;
  if (value < 0 || value > 2) {
    throw invalidRequest('Invalid temperature value, the valid range of temperature is [0, 2]', 'temperature');
  }
  return value;
}

export function parseTopP(body: Body): number {
  const value = number(body, 'top_p') ?? 1;
  if (value <= 0 || value > 1) throw invalidRequest('Invalid top_p value, the valid range of top_p is (0, 1]', 'top_p');
  return value;
}

export function checkPenalties(body: Body): void {
  for (const name of ['frequency_penalty', 'presence_penalty']) {
    const value = number(body, name);
    if (value !== undefined && (value < -2 || value > 2)) {
      throw invalidRequest(`Invalid ${name} value, the valid range of ${name} is [-2, 2]`, name);
    }
  }
}

/** `max_tokens` in [min, 393216]; undefined when unset. */
export function parseMaxTokens(body: Body, min: number): number | undefined {
  const value = number(body, 'max_tokens');
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > MAX_OUTPUT_TOKENS) {
    throw invalidRequest(
      `Invalid max_tokens value, the valid range of max_tokens is [${min}, ${MAX_OUTPUT_TOKENS}]`,
      'max_tokens',
    );
  }
  return value;
}

/** `stop`: a string or an array of up to 16 strings. */
export function parseStop(body: Body): string[] {
  const value = field(body, 'stop');
  if (value === undefined) return [];
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.some((s) => typeof s !== 'string')) {
    throw deserializeError('stop: invalid type, expected a string or a sequence of strings', 'stop');
  }
  if (value.length > MAX_STOP_STRINGS) {
    throw invalidRequest(`Invalid stop value, at most ${MAX_STOP_STRINGS} stop sequences are allowed`, 'stop');
  }
  return value as string[];
}

/** `stream` and `stream_options`, which is only valid with `stream: true` (documented 400). */
export function parseStream(body: Body): { stream: boolean; includeUsage: boolean } {
  const stream = field(body, 'stream') ?? false;
  if (typeof stream !== 'boolean') throw deserializeError('stream: invalid type, expected a boolean', 'stream');
  const options = field(body, 'stream_options');
  if (options === undefined) return { stream, includeUsage: false };
  if (!stream) throw invalidRequest('stream_options should be set along with stream = true', 'stream_options');
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw deserializeError('stream_options: invalid type, expected an object', 'stream_options');
  }
  const includeUsage = (options as Body).include_usage ?? false;
  if (typeof includeUsage !== 'boolean') {
    throw deserializeError('stream_options.include_usage: invalid type, expected a boolean', 'stream_options');
  }
  return { stream, includeUsage };
}

/** `thinking: {"type": "enabled" | "disabled"}`; undefined when unset. */
export function parseThinking(body: Body): boolean | undefined {
  const value = field(body, 'thinking');
  if (value === undefined) return undefined;
  const type = typeof value === 'object' && !Array.isArray(value) ? (value as Body).type : undefined;
  if (type !== 'enabled' && type !== 'disabled') {
    throw deserializeError('thinking.type: unknown variant, expected `enabled` or `disabled`', 'thinking');
  }
  return type === 'enabled';
}
