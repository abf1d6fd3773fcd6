import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { fuzzOperation } from './documents';
import { RawJson, graphqlGet, jsonPost, type RawRequest } from './exchange';
import { schemaOperation, subscriptionOperation, type FuzzOperation } from './operations';
import { anyValue, edgeString } from './values';

/**
 * Whole requests for the fuzzer: the body's `variables`, `operationName` and `extensions`
 * fuzzed around an operation, and the HTTP around it (GET with query parameters, raw
 * bodies that are not JSON, odd content types and encodings).
 */

/** A GraphQL request body as a client may send it: any field of any JSON type. */
export interface RequestBody {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
  extensions?: unknown;
}

/** An own enumerable key `key` (`__proto__` included) holding `value`. */
function withOwnKey(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
  return target;
}

/** `{"a": {"a": …}}` or `[[…]]`, `depth` levels, as JSON text (see RawJson). */
function nested(depth: number, list: boolean, leaf: unknown): RawJson {
  const text = list ? `${'['.repeat(depth)}${JSON.stringify(leaf)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${JSON.stringify(leaf)}${'}'.repeat(depth)}`;
  return new RawJson(text, `${depth} nested ${list ? 'lists' : 'objects'}`);
}

const variableName = fc.constantFrom('input', 'inputs', 'id', 'representations', 'v');

/**
 * Variables of every shape: any JSON (objects, but also arrays, strings, numbers, null);
 * the operation's variables with wrong types; huge but bounded lists; objects nested
 * thousands of levels deep; prototype-polluting keys at the top or inside.
 */
export const fuzzVariables = (own: Record<string, unknown> | undefined): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(own) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
    { weight: 2, arbitrary: fc.dictionary(variableName, fc.oneof(anyValue, fc.jsonValue({ maxDepth: 3 })), { maxKeys: 3 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(variableName, fc.constantFrom(999, 1000, 1001, 20_000), fc.constantFrom<unknown>({ prompt: 'x', maxTokens: 1 }, { __typename: 'Completion', id: 'x' }, 1, 'x', null))
        .map(([name, count, item]) => ({ ...own, [name]: Array.from({ length: count }, () => item) })),
    },
    {
      // More values than GRAPHQL_MAX_LIST_ITEMS × 16 without any list over the limit.
      weight: 1,
      arbitrary: fc.constantFrom(900, 1000).map((outer) => ({ ...own, v: Array.from({ length: outer }, () => Array.from({ length: 20 }, () => 1)) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(variableName, fc.integer({ min: 50, max: 10_000 }), fc.boolean())
        .map(([name, depth, list]) => ({ ...own, [name]: nested(depth, list, { prompt: 'x' }) })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'), fc.oneof(anyValue, fc.constant({ polluted: true, prototype: { polluted: true } })), fc.boolean())
        .map(([key, value, inside]) => {
          const variables: Record<string, unknown> = { ...own };
          if (!inside) return withOwnKey(variables, key, value);
          const first = Object.keys(variables)[0] ?? 'input';
          const target = variables[first];
          const holder = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
          variables[first] = withOwnKey(holder, key, value);
          return variables;
        }),
    },
  );

/** operationName: the document's, another, none, null, over-long, or not a string. */
export const fuzzOperationName = (own: string | undefined): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(own) },
    { weight: 2, arbitrary: fc.constantFrom(undefined, null, '', 'Q', 'Fuzz', 'Nope') },
    { weight: 1, arbitrary: edgeString },
    { weight: 1, arbitrary: fc.constantFrom(128, 129, 10_000).map((length) => 'N'.repeat(length)) },
    { weight: 1, arbitrary: anyValue },
  );

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * extensions: none, arbitrary JSON, or an automatic persisted query: the document's real
 * hash (registers it), a random one, a malformed one, a wrong version; with or without
 * the query (a hash alone asks for a registered document).
 */
export const fuzzExtensions = (query: string): fc.Arbitrary<{ extensions: unknown; dropQuery: boolean }> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant({ extensions: undefined, dropQuery: false }) },
    { weight: 1, arbitrary: fc.record({ extensions: fc.jsonValue({ maxDepth: 3 }), dropQuery: fc.constant(false) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        extensions: fc.record(
          {
            persistedQuery: fc.oneof(
              fc.record(
                {
                  version: fc.constantFrom<unknown>(1, 1, 1, 2, 0, '1', null),
                  sha256Hash: fc.oneof(
                    { weight: 3, arbitrary: fc.constant(sha256(query)) },
                    fc.stringMatching(/^[0-9a-f]{64}$/),
                    fc.string({ maxLength: 70 }),
                    anyValue,
                  ),
                },
                { requiredKeys: [] },
              ),
              anyValue,
            ),
            other: fc.jsonValue({ maxDepth: 2 }),
          },
          { requiredKeys: ['persistedQuery'] },
        ),
        dropQuery: fc.boolean(),
      }),
    },
  );

/** An operation with its body fuzzed: variables, operationName and extensions. */
export const fuzzBody = (operations: fc.Arbitrary<FuzzOperation> = schemaOperation): fc.Arbitrary<RequestBody> =>
  operations.chain((operation) =>
    fc
      .record({
        variables: fuzzVariables(operation.variables),
        operationName: fuzzOperationName(operation.operationName),
        apq: fuzzExtensions(operation.query),
        query: fc.oneof({ weight: 12, arbitrary: fc.constant<unknown>(operation.query) }, { weight: 1, arbitrary: anyValue }),
      })
      .map(({ variables, operationName, apq, query }) => ({
        ...(apq.dropQuery ? {} : { query }),
        ...(variables === undefined ? {} : { variables }),
        ...(operationName === undefined ? {} : { operationName }),
        ...(apq.extensions === undefined ? {} : { extensions: apq.extensions }),
      })),
  );

/** What graphql-ws and graphql-sse accept in a subscribe payload (they refuse other types themselves). */
export interface StreamPayload {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
  extensions?: Record<string, unknown>;
}

const isObjectOrNull = (value: unknown): value is Record<string, unknown> | null =>
  value === null || (typeof value === 'object' && !Array.isArray(value) && !(value instanceof RawJson));

/**
 * A subscribe payload for WebSocket and SSE: mostly the `completionStream` subscription
 * with fuzzed inputs, otherwise any document; its variables, operation name and extensions
 * fuzzed within the types the transport's library lets through (`rawJson`: whether deep
 * RawJson variables may be sent, i.e. whether the request goes through `toJsonText`).
 */
export const fuzzStreamPayload = (options: { rawJson: boolean }): fc.Arbitrary<StreamPayload> =>
  fc.oneof({ weight: 4, arbitrary: subscriptionOperation }, { weight: 1, arbitrary: fuzzOperation }).chain((operation) =>
    fc
      .record({
        variables: fc.oneof({ weight: 3, arbitrary: fc.constant<unknown>(operation.variables) }, { weight: 2, arbitrary: fuzzVariables(operation.variables) }),
        operationName: fc.oneof({ weight: 3, arbitrary: fc.constant<unknown>(operation.operationName) }, { weight: 1, arbitrary: fuzzOperationName(operation.operationName) }),
        apq: fuzzExtensions(operation.query),
      })
      .map(({ variables, operationName, apq }) => {
        const payload: StreamPayload = { query: operation.query };
        const deep = variables !== null && typeof variables === 'object' && Object.values(variables).some((value) => value instanceof RawJson);
        if (isObjectOrNull(variables) && (options.rawJson || !deep)) payload.variables = variables;
        else if (operation.variables) payload.variables = operation.variables as Record<string, unknown>;
        if (typeof operationName === 'string' || operationName === null) payload.operationName = operationName;
        if (apq.extensions !== null && typeof apq.extensions === 'object' && !Array.isArray(apq.extensions)) payload.extensions = apq.extensions as Record<string, unknown>;
        return payload;
      }),
  );

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/graphql-response+json',
  'application/graphql',
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/octet-stream',
  '',
  'a/b; c="',
  'APPLICATION/JSON',
  'application/json, text/plain',
];

/** A body that is not a GraphQL request: not JSON, truncated JSON, JSON of the wrong shape, binary. */
const rawBody = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
  fc.jsonValue({ maxDepth: 3 }).map((json) => JSON.stringify(json)),
  fc.tuple(fuzzOperation, fc.nat()).map(([operation, cut]) => {
    const text = JSON.stringify(operation);
    return text.slice(0, cut % (text.length + 1));
  }),
  fc.constantFrom('', 'null', '0', 'false', '""', '[]', '[{"query":"{ __typename }"}]', '{"query":"{ __typename }"', 'query={__typename}', '\uFEFF{"query":"{ __typename }"}'),
);

/** Header sets around a raw body: content type, CSRF preflight header, encodings. */
const rawHeaders = fc
  .record(
    {
      'content-type': fc.constantFrom(...CONTENT_TYPES),
      'apollo-require-preflight': fc.constantFrom('true', ''),
      'x-apollo-operation-name': fc.constantFrom('Q', ''),
      'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'x-unknown'),
      accept: fc.constantFrom(
        'application/json',
        'application/graphql-response+json',
        'text/html',
        'text/event-stream',
        'multipart/mixed;subscriptionSpec="1.0", application/json',
        'multipart/mixed;deferSpec=20220824',
        '*/*',
        'x/y;q=0',
      ),
    },
    { requiredKeys: [] },
  )
  .map((headers) => Object.fromEntries(Object.entries(headers).filter(([name, value]) => !(name === 'content-type' && value === ''))));

/**
 * The HTTP around a GraphQL request, to /graphql: mostly a JSON POST of a fuzzed body;
 * GET with query parameters (JSON-encoded variables and extensions, the CSRF header, or
 * not); raw bodies with odd content types.
 */
export const fuzzHttpRequest: fc.Arbitrary<RawRequest> = fc.oneof(
  { weight: 4, arbitrary: fuzzBody(fuzzOperation).map((body) => jsonPost('/graphql', body)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fuzzBody(fuzzOperation),
        fc.boolean(),
        // text/html asks for the Sandbox page: rare, since that answer says nothing about the operation.
        fc.oneof({ weight: 6, arbitrary: fc.constantFrom<Record<string, string>>({}, { 'content-type': 'application/json' }) }, { weight: 1, arbitrary: fc.constant({ accept: 'text/html' }) }),
      )
      .map(([body, preflight, headers]) => {
        const request = graphqlGet('/graphql', body as Record<string, unknown>, headers);
        if (!preflight) delete request.headers['apollo-require-preflight'];
        return request;
      })
      // Node refuses request heads over 16 KB (431) before the gateway sees them; stay under.
      .filter((request) => request.path.length < 12_000),
  },
  { weight: 2, arbitrary: fc.tuple(rawBody, rawHeaders).map(([body, headers]): RawRequest => ({ method: 'POST', path: '/graphql', headers, body })) },
);
