import type { FuzzOperation } from './operations';
import type { RequestBody } from './requests';

/**
 * The probes of the "Hostile input" issue (test/e2e/hostile-input.test.ts pins each one's
 * exact refusal), given to the fuzz properties as fixed examples: each runs first, through
 * the same generic checks as every generated input. Built lazily: some are megabytes.
 */

const COMPLETION_ID = `cmpl_v1_${'A'.repeat(43)}`;
const ENTITIES = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Completion { id } } }';

/** Documents (and their variables) that once cost seconds or froze the process. */
export function probeOperations(): FuzzOperation[] {
  const fragments = Array.from({ length: 10 }, (_, i) =>
    i === 0 ? 'fragment F0 on UpstreamStatus { mode circuit }' : `fragment F${i} on UpstreamStatus { mode ...F${i - 1} circuit ...F${i - 1} }`,
  );
  return [
    { query: `{ ${Array.from({ length: 300_000 }, (_, i) => `a${i}: __typename`).join(' ')} }` },
    { query: `{ ${Array.from({ length: 21 }, (_, i) => `a${i}: __typename`).join(' ')} }` },
    { query: `{ upstream { ...F9 } } ${fragments.join(' ')}` },
    { query: `{ upstream { ${'mode '.repeat(100_000)} } }` },
    { query: `query ${'N'.repeat(40_000)} { __typename }` },
    {
      query: 'query ($input: CompletionInput!) { completion(input: $input) { id } }',
      variables: { input: { messages: Array.from({ length: 200_000 }, () => ({ role: 'USER', content: 'x' })), cache: 'BYPASS' } },
    },
    { query: ENTITIES, variables: { r: Array.from({ length: 60_000 }, () => ({ __typename: 'Completion', id: COMPLETION_ID })) } },
    { query: ENTITIES, variables: { r: [{ __typename: 'Nope', id: 'x' }] } },
    { query: `{ ${Array.from({ length: 20 }, (_, i) => `m${i}: models { id }`).join(' ')} }` },
    // Found by this fuzzer: a representation without its key field was a masked internal
    // error (src/graphql/schema.ts, guardEntities, now refuses it as BAD_USER_INPUT).
    { query: ENTITIES, variables: { r: [{ __typename: 'Completion' }] } },
    { query: ENTITIES, variables: { r: [{ __typename: 'Completion', id: null }] } },
    { query: '{ _entities(representations: [{__typename: "Completion", id: [1]}]) { __typename } }' },
    ...probeSubscriptions(),
  ];
}

/**
 * Found by this fuzzer: @skip/@include at a subscription's top level made graphql-js's
 * validation throw (a 500 over HTTP and SSE, a 4500 close over WebSocket); refused since
 * by src/graphql/limits/subscription-root.ts.
 */
export function probeSubscriptions(): FuzzOperation[] {
  return [
    { query: 'subscription { __typename @include }' },
    { query: 'subscription { ...F0 @include }' },
    {
      query: 'subscription S($x: Boolean!) { ...F } fragment F on Subscription { completionStream(input: {prompt: "x"}) @include(if: $x) { delta } }',
      variables: { x: true },
    },
  ];
}

/** Request bodies: an over-long operationName in the request, an APQ hash that does not match its query. */
export function probeBodies(): RequestBody[] {
  return [
    { query: '{ __typename }', operationName: 'N'.repeat(40_000) },
    { query: '{ __typename }', extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } },
    { extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } },
  ];
}
