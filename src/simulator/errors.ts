import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';

/** DeepSeek's error body: the OpenAI pattern, with `code` often "invalid_request_error". */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

/** An error answer the simulator gives; thrown by parsers and routes, sent by the server. */
export class SimError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'SimError';
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 Invalid Format: a bad request body. */
export function invalidRequest(message: string, param: string | null = null): SimError {
  return new SimError(400, message, 'invalid_request_error', 'invalid_request_error', param);
}

/** 401 exactly as captured live in 2026 (`****` + last 4 characters of the key sent). */
export function authenticationFails(key: string): SimError {
  const message = `Authentication Fails, Your api key: ****${key.slice(-4)} is invalid (request_id: ${randomUUID()})`;
  return new SimError(401, message, 'authentication_error', 'invalid_request_error');
}

/** 402 exactly as captured live. */
export function insufficientBalance(): SimError {
  return new SimError(402, 'Insufficient Balance', 'unknown_error', 'invalid_request_error');
}

export function notFound(path: string): SimError {
  return new SimError(404, `Not Found: ${path}`, 'invalid_request_error', 'not_found');
}

export function methodNotAllowed(method: string, allowed: string): SimError {
  return new SimError(405, `Method Not Allowed: ${method}`, 'invalid_request_error', 'method_not_allowed', null, {
    allow: allowed,
  });
}

/**
 * The body DeepSeek documents for `status` (used by status faults). type/code of 422, 429,
 * 500 and 503 are unconfirmed (deepseek-api.md §9.6); these follow the OpenAI pattern.
 */
export function statusError(status: number, key: string, message?: string): SimError {
  switch (status) {
    case 400:
      return invalidRequest(message ?? 'Invalid Format');
    case 401: {
      const auth = authenticationFails(key);
      return message === undefined ? auth : new SimError(401, message, auth.type, auth.code);
    }
    case 402:
      return message === undefined ? insufficientBalance() : new SimError(402, message, 'unknown_error', 'invalid_request_error');
    case 422:
      return new SimError(422, message ?? 'Invalid Parameters', 'invalid_request_error', 'invalid_request_error');
    case 429:
      return new SimError(429, message ?? 'Rate Limit Reached', 'rate_limit_error', 'rate_limit_exceeded');
    case 500:
      return new SimError(500, message ?? 'Server Error', 'server_error', 'server_error');
    case 503:
      return new SimError(503, message ?? 'Server Overloaded', 'server_error', 'server_overloaded');
    default:
      return new SimError(status, message ?? STATUS_CODES[status] ?? 'Unknown Error', 'unknown_error', 'unknown_error');
  }
}
