import type { FastifyRequest } from 'fastify';
import type { GraphQLError, GraphQLFormattedError } from 'graphql';
import { ErrorCode } from '../errors';

/**
 * What the HTTP streaming transports (GraphQL over SSE, multipart subscriptions) share
 * about reading an operation from a request and answering one they refuse.
 */

export const EVENT_STREAM = 'text/event-stream';

/** The response type of Apollo's multipart subscription protocol (the boundary is always `graphql`). */
export const MULTIPART_SUBSCRIPTION = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"';

/** Whether the client asks for GraphQL over SSE (`Accept: text/event-stream`). */
export function acceptsEventStream(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').toLowerCase().includes(EVENT_STREAM);
}

/**
 * Whether the client asks for Apollo's multipart subscription protocol: an Accept entry
 * `multipart/mixed` with `subscriptionSpec=1.0` (quoted or not), as Apollo Client's
 * HttpLink, Apollo Kotlin and Apollo iOS send for a subscription. (`multipart/mixed` alone,
 * or with `deferSpec`, is incremental delivery of a query: Apollo Server's business.)
 */
export function acceptsMultipartSubscription(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  // Asked of every POST /graphql: most never name multipart/mixed, and are not parsed.
  if (!accept || !MULTIPART_MIXED.test(accept)) return false;
  return accept.split(',').some((entry) => {
    const [type, ...params] = entry.split(';').map((part) => part.trim().toLowerCase());
    return type === 'multipart/mixed' && params.some((param) => param.replace(/\s+/g, '').replace(/"/g, '') === 'subscriptionspec=1.0');
  });
}

const MULTIPART_MIXED = /multipart\/mixed/i;

/** An operation as a streaming transport receives it, checked for shape only. */
export interface RequestedOperation {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  extensions?: Record<string, unknown> | null;
}

/**
 * The operation of a streaming request, or what is wrong with it (answered as a typed
 * 400, where graphql-sse would refuse without a code, or, for a JSON body that is not an
 * object, wait forever for a body Fastify has already read): the operation must be a
 * JSON object (POST) or query parameters (GET) with a string `query`, and `variables` and
 * `extensions` objects when present.
 */
export function readOperation(request: FastifyRequest, path: string): { operation: RequestedOperation } | { problem: string } {
  const expected = "the operation as { query, variables?, operationName?, extensions? } with a string query";
  const problem = (text: string) => ({ problem: `${path}: ${text}; send ${expected}.` });
  let operation: unknown = request.body;
  if (request.method === 'GET') {
    const params = (request.query ?? {}) as Record<string, unknown>;
    try {
      operation = {
        query: params.query,
        operationName: params.operationName,
        variables: typeof params.variables === 'string' ? JSON.parse(params.variables) : params.variables,
        extensions: typeof params.extensions === 'string' ? JSON.parse(params.extensions) : params.extensions,
      };
    } catch {
      return problem('variables and extensions must be JSON objects');
    }
  }
  if (operation === null || typeof operation !== 'object' || Array.isArray(operation)) return { problem: `${path}: send ${expected}.` };
  const { query, variables, operationName, extensions } = operation as Record<string, unknown>;
  if (typeof query !== 'string') return problem('the query must be a string');
  const isObject = (value: unknown): boolean => value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value));
  if (!isObject(variables) || !isObject(extensions)) return problem('variables and extensions must be JSON objects');
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return problem('operationName must be a string');
  return {
    operation: {
      query,
      operationName: operationName as string | null | undefined,
      variables: variables as Record<string, unknown> | null | undefined,
      extensions: extensions as Record<string, unknown> | null | undefined,
    },
  };
}

export function headerOf(request: { headers: Record<string, string | string[] | undefined> }, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function errorBody(message: string, code: string = ErrorCode.BAD_REQUEST): { errors: GraphQLFormattedError[] } {
  return { errors: [{ message, extensions: { code } }] };
}

/** Request-level errors answer like Apollo over HTTP: a status with a JSON body, no stream. */
export function jsonError(status: number, errors: GraphQLFormattedError[], extraHeaders: Record<string, string> = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', ...extraHeaders };
  const statusText = STATUS_TEXT[status] ?? 'Bad Request';
  return [JSON.stringify({ errors }), { status, statusText, headers }] as [
    string,
    { status: number; statusText: string; headers: Record<string, string> },
  ];
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 429: 'Too Many Requests' };

/** The HTTP status a refusal asks for (`extensions.http.status`), 400 by default. */
export function statusOf(error: GraphQLError | undefined): number {
  return (error?.extensions.http as { status?: number } | undefined)?.status ?? 400;
}

/**
 * The headers a refusal asks for (`extensions.http.headers`, as Apollo reads them): the
 * `WWW-Authenticate` challenge of a credentials refusal, the `Retry-After` of a quota's.
 */
export function refusalHeaders(error: GraphQLError | undefined): Record<string, string> {
  const headers = (error?.extensions.http as { headers?: Map<string, string> } | undefined)?.headers;
  const out: Record<string, string> = {};
  for (const name of ['www-authenticate', 'retry-after']) {
    const value = headers?.get(name);
    if (value) out[name] = value;
  }
  return out;
}
