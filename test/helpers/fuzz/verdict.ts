import { ErrorCode, isErrorCode } from '../../../src/errors';

/**
 * What every answer to a fuzzed request must satisfy, whatever was sent: no 5xx, a body a
 * GraphQL client can read (JSON, or an SSE stream of JSON events), every error typed with a
 * public code other than INTERNAL_SERVER_ERROR (bad input is the client's fault and must
 * say so) or UPSTREAM_REJECTED (bad input must be refused before it costs an upstream
 * call), and nothing internal leaked: no stack trace, no API key.
 */

/** An answer as received, for the checks and for the failure message. */
export interface Answer {
  /** Where it came from, e.g. `POST /graphql`. */
  via: string;
  /** HTTP status; undefined over WebSocket. */
  status?: number;
  contentType?: string | null;
  /** The raw body (or, over WebSocket, the messages received, as JSON). */
  text: string;
}

/** A V8 stack frame (`at fn (file:1:2)` or `at file:1:2`), or a node/ts source location. */
const STACK_TRACE = /\bat (?:[\w$.<>[\] ]+ \()?(?:node:|file:|\/)[^\s)]*:\d+:\d+\)?|node_modules\/|\/src\/[\w/-]+\.ts\b/;
/** An API key (DeepSeek's keys, and the simulator's throwaway one, start with `sk-`). */
const API_KEY = /sk-[A-Za-z0-9-]{6,}/;

/**
 * The problems of one GraphQL result (an HTTP body, an SSE `next` event, a WebSocket
 * `next` or `error` payload): an empty list when it passes.
 */
export function resultProblems(result: unknown): string[] {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return ['the result is not a JSON object'];
  const { data, errors } = result as { data?: unknown; errors?: unknown };
  if (errors === undefined) {
    return data === undefined ? ['the result has neither data nor errors'] : [];
  }
  return errorListProblems(errors);
}

/** The problems of a list of formatted GraphQL errors. */
export function errorListProblems(errors: unknown): string[] {
  if (!Array.isArray(errors) || errors.length === 0) return ['errors is not a non-empty list'];
  const problems: string[] = [];
  errors.forEach((error: unknown, index) => {
    const extensions = (error as { extensions?: { code?: unknown; stacktrace?: unknown; http?: unknown } } | null)?.extensions;
    const code = extensions?.code;
    if (typeof (error as { message?: unknown } | null)?.message !== 'string') problems.push(`errors[${index}] has no message`);
    if (!isErrorCode(code)) problems.push(`errors[${index}].extensions.code is ${JSON.stringify(code)}, not a public code`);
    else if (code === ErrorCode.INTERNAL_SERVER_ERROR) problems.push(`errors[${index}] is INTERNAL_SERVER_ERROR`);
    // The fuzz gateways run against the simulator, which refuses what DeepSeek refuses: a
    // rejection means input validation let through something it should have refused.
    else if (code === ErrorCode.UPSTREAM_REJECTED) problems.push(`errors[${index}] is UPSTREAM_REJECTED: bad input reached DeepSeek`);
    if (extensions?.stacktrace !== undefined) problems.push(`errors[${index}] carries a stacktrace`);
    if (extensions?.http !== undefined) problems.push(`errors[${index}] carries Apollo's internal extensions.http`);
  });
  return problems;
}

/** Leaks in any text a client receives. `sent` is the request: what it contained may be echoed. */
export function leakProblems(text: string, sent: string): string[] {
  const problems: string[] = [];
  if (STACK_TRACE.test(text) && !STACK_TRACE.test(sent)) problems.push(`a stack trace or source path: ${STACK_TRACE.exec(text)![0]}`);
  if (API_KEY.test(text) && !API_KEY.test(sent)) problems.push('an API key (sk-…)');
  return problems;
}

/** The problems of an HTTP answer from /graphql: status, JSON body, typed errors, no leaks. */
export function httpAnswerProblems(answer: Answer, sent: string): string[] {
  const problems = statusProblems(answer);
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return [...problems, 'the body is not JSON', ...leakProblems(answer.text, sent)];
  }
  if (!/\bjson\b/i.test(answer.contentType ?? '')) problems.push(`content-type ${String(answer.contentType)} for a JSON body`);
  return [...problems, ...resultProblems(body), ...leakProblems(answer.text, sent)];
}

/**
 * The problems of an answer from /graphql/stream: a 200 is a stream of `next` events (each
 * checked as a result) ended by `complete`; anything else is a JSON error body, as over HTTP.
 */
export function sseAnswerProblems(answer: Answer, sent: string): string[] {
  if (answer.status !== 200 || !/text\/event-stream/i.test(answer.contentType ?? '')) return httpAnswerProblems(answer, sent);
  const problems: string[] = [];
  const events = parseEventStream(answer.text);
  for (const event of events) {
    if (event.event === 'next') {
      try {
        problems.push(...resultProblems(JSON.parse(event.data)).map((problem) => `next event: ${problem}`));
      } catch {
        problems.push(`a next event whose data is not JSON: ${event.data.slice(0, 200)}`);
      }
    } else if (event.event !== 'complete') {
      problems.push(`an unexpected event ${JSON.stringify(event.event)}`);
    }
  }
  if (events.at(-1)?.event !== 'complete') problems.push('the stream did not end with a complete event');
  return [...problems, ...leakProblems(answer.text, sent)];
}

/**
 * The problems of a multipart subscription answer from /graphql: a 200 is parts between
 * `--graphql` delimiters, each an `application/json` body that is a heartbeat `{}`, a
 * `{ payload }` result (checked as one) or a transport error `{ payload: null, errors }`,
 * ended by the closing delimiter; anything else is a JSON error body, as over HTTP.
 */
export function multipartAnswerProblems(answer: Answer, sent: string): string[] {
  if (answer.status !== 200 || !/multipart\/mixed/i.test(answer.contentType ?? '')) return httpAnswerProblems(answer, sent);
  const problems: string[] = [];
  const pieces = answer.text.split('\r\n--graphql');
  if (!pieces.at(-1)!.startsWith('--')) problems.push('the body did not end with the closing delimiter');
  for (const part of pieces.slice(1, -1)) {
    const split = part.indexOf('\r\n\r\n');
    if (!/content-type: application\/json/i.test(part.slice(0, split))) problems.push(`a part without content-type application/json: ${part.slice(0, 100)}`);
    let body: { payload?: unknown; errors?: unknown };
    try {
      body = JSON.parse(part.slice(split + 4)) as typeof body;
    } catch {
      problems.push(`a part whose body is not JSON: ${part.slice(0, 200)}`);
      continue;
    }
    if (Object.keys(body).length === 0) continue; // a heartbeat
    if (body.payload === null) problems.push(...errorListProblems(body.errors).map((problem) => `transport error: ${problem}`));
    else problems.push(...resultProblems(body.payload).map((problem) => `payload: ${problem}`));
  }
  return [...problems, ...leakProblems(answer.text, sent)];
}

/** The problems of any answer from /graphql, by its content type: JSON, multipart or SSE. */
export function graphqlAnswerProblems(answer: Answer, sent: string): string[] {
  if (/multipart\/mixed/i.test(answer.contentType ?? '')) return multipartAnswerProblems(answer, sent);
  if (/text\/event-stream/i.test(answer.contentType ?? '')) return sseAnswerProblems(answer, sent);
  return httpAnswerProblems(answer, sent);
}

function statusProblems(answer: Answer): string[] {
  return answer.status !== undefined && answer.status >= 500 ? [`status ${answer.status}`] : [];
}

/** `event:`/`data:` pairs of a Server-Sent Events body (comments and keep-alives skipped). */
export function parseEventStream(text: string): Array<{ event: string; data: string }> {
  const events: Array<{ event: string; data: string }> = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (event !== undefined) events.push({ event, data: data.join('\n') });
  }
  return events;
}

/**
 * The gateway runs in this process: a prototype-pollution payload that worked would show
 * on Object.prototype here (the fuzzed variables carry `{ polluted: true }` under
 * `__proto__`, `constructor` and `prototype` keys).
 */
function pollutionProblems(): string[] {
  return 'polluted' in Object.prototype ? ['Object.prototype was polluted'] : [];
}

/** Throws one error naming every problem (prototype pollution included) and showing the start of the answer. */
export function assertNoProblems(answer: Answer, found: string[]): void {
  const problems = [...found, ...pollutionProblems()];
  if (problems.length === 0) return;
  const excerpt = answer.text.length > 600 ? `${answer.text.slice(0, 600)}… (${answer.text.length} chars)` : answer.text;
  throw new Error(`${answer.via} → ${answer.status ?? 'ws'}: ${problems.join('; ')}\n${excerpt}`);
}
