import fc from 'fast-check';
import type { Answer } from './verdict';

/**
 * A hang detector, not a performance check: every fuzzed request must be answered in full
 * within this, on a loaded machine too (the refusals take milliseconds; the simulator
 * answers at once). A request still open after it is reported as a hang.
 */
export const HANG_LIMIT_MS = 5_000;

/** One HTTP request as the fuzzer sends it. */
export interface RawRequest {
  method: 'GET' | 'POST';
  /** Path and query string, e.g. `/graphql?query=…`. */
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** Sends `request` and reads the whole answer, or throws naming a hang after `hangLimitMs`. */
export async function exchange(baseUrl: string, request: RawRequest, hangLimitMs = HANG_LIMIT_MS): Promise<Answer> {
  const via = `${request.method} ${request.path.split('?')[0]}`;
  const signal = AbortSignal.timeout(hangLimitMs);
  try {
    const response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers: request.headers,
      // A copy typed on a plain ArrayBuffer, which every BodyInit typing accepts.
      body: typeof request.body === 'string' || request.body === undefined ? request.body : new Uint8Array(request.body),
      signal,
    });
    const text = await response.text();
    return { via, status: response.status, contentType: response.headers.get('content-type'), text };
  } catch (error) {
    if (signal.aborted) throw new Error(`${via}: no complete answer within ${hangLimitMs} ms (a hang)`);
    throw error;
  }
}

/**
 * A JSON value sent as the text it holds: values nested thousands of levels deep, which
 * `JSON.stringify` and fast-check's printer (both recursive) cannot handle on jest's stack,
 * while the gateway must. Printed in counterexamples by its description.
 */
export class RawJson {
  constructor(
    readonly text: string,
    readonly description: string,
  ) {}

  [fc.toStringMethod](): string {
    return `RawJson(${this.description})`;
  }
}

/** `JSON.stringify`, with each RawJson inside written as its text. */
export function toJsonText(value: unknown): string {
  const raw: string[] = [];
  const text = JSON.stringify(value, (_key, item: unknown) => (item instanceof RawJson ? `\u0000raw${raw.push(item.text) - 1}\u0000` : item));
  return text.replace(/"\\u0000raw(\d+)\\u0000"/g, (_match, index: string) => raw[Number(index)]!);
}

/** A JSON POST to `path` (the usual GraphQL request). */
export function jsonPost(path: string, body: unknown, headers: Record<string, string> = {}): RawRequest {
  return { method: 'POST', path, headers: { 'content-type': 'application/json', ...headers }, body: toJsonText(body) };
}

/** A GraphQL GET: each defined parameter as a query-string parameter (objects as JSON), with the CSRF preflight header. */
export function graphqlGet(path: string, params: Record<string, unknown>, headers: Record<string, string> = {}): RawRequest {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    search.append(name, typeof value === 'string' ? value : toJsonText(value));
  }
  return { method: 'GET', path: `${path}?${search.toString()}`, headers: { 'apollo-require-preflight': 'true', ...headers } };
}

/** The request as text, for the leak check (what a response may legitimately echo). */
export function sentText(request: RawRequest): string {
  const body = request.body === undefined ? '' : typeof request.body === 'string' ? request.body : Buffer.from(request.body).toString('latin1');
  return `${request.path}\n${decodeURIComponentSafe(request.path.replace(/\+/g, ' '))}\n${JSON.stringify(request.headers)}\n${body}`;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
