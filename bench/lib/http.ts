import { request } from 'undici';
import { elapsedMs } from './stats';

/** One HTTP exchange as a probe reports it. */
export interface HttpAnswer {
  /** HTTP status; 0 when no response came (then `error` says why). */
  status: number;
  ms: number;
  /** Response body size (counted while streaming: a 500 MB body is never held). */
  bytes: number;
  /** The body, when it is at most `keepBodyBytes`. */
  body?: string;
  /** `errors[].extensions.code` of a JSON GraphQL answer. */
  codes: string[];
  /** `errors[].message` of a JSON GraphQL answer. */
  messages: string[];
  /** A client-side failure: `CLIENT_<code>` (timeout, reset, abort…). */
  error?: string;
}

export interface SendOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Bodies up to this size are kept and parsed (default 1 MiB). */
  keepBodyBytes?: number;
}

/** Sends one request on a fresh connection and reads the whole answer. Never throws. */
export async function send(url: string, options: SendOptions = {}): Promise<HttpAnswer> {
  const start = process.hrtime.bigint();
  const keep = options.keepBodyBytes ?? 1024 * 1024;
  let status = 0;
  let bytes = 0;
  try {
    const response = await request(url, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers: options.headers ?? (options.body === undefined ? {} : { 'content-type': 'application/json' }),
      body: options.body,
      headersTimeout: options.timeoutMs ?? 60_000,
      bodyTimeout: options.timeoutMs ?? 60_000,
      signal: options.signal,
      reset: true,
    });
    status = response.statusCode;
    const pieces: Buffer[] = [];
    for await (const piece of response.body) {
      const buffer = piece as Buffer;
      bytes += buffer.length;
      if (bytes <= keep) pieces.push(buffer);
    }
    const ms = elapsedMs(start);
    if (bytes > keep) return { status, ms, bytes, codes: [], messages: [] };
    const body = Buffer.concat(pieces).toString('utf8');
    return { status, ms, bytes, body, ...graphqlErrors(body) };
  } catch (error) {
    // undici's errors carry a string code (UND_ERR_…); an abort is a DOMException (code 20).
    const code = (error as { code?: unknown }).code;
    return { status, ms: elapsedMs(start), bytes, codes: [], messages: [], error: `CLIENT_${typeof code === 'string' ? code : (error as Error).name}` };
  }
}

/** A GraphQL POST with a prepared JSON body (big bodies are built once, not re-serialised). */
export function postGraphQL(origin: string, body: string, options: Omit<SendOptions, 'body' | 'method'> = {}): Promise<HttpAnswer> {
  return send(`${origin}/graphql`, { ...options, method: 'POST', body, headers: { 'content-type': 'application/json', ...options.headers } });
}

function graphqlErrors(body: string): { codes: string[]; messages: string[] } {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ message?: string; extensions?: { code?: string } }> };
    const errors = parsed.errors ?? [];
    return { codes: errors.map((e) => e.extensions?.code ?? 'NO_CODE'), messages: errors.map((e) => String(e.message ?? '')) };
  } catch {
    return { codes: [], messages: [] };
  }
}

/** `200`, `400 GRAPHQL_VALIDATION_FAILED`, `CLIENT_UND_ERR_HEADERS_TIMEOUT`…: status and distinct codes. */
export function outcomeOf(answer: HttpAnswer): string {
  const codes = [...new Set(answer.codes)];
  const counted = codes.map((code) => {
    const n = answer.codes.filter((c) => c === code).length;
    return n > 1 ? `${code}×${n}` : code;
  });
  return [...(answer.status ? [answer.status] : []), ...counted, ...(answer.error ? [answer.error] : [])].join(' ');
}
