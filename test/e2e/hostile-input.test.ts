import { connect } from 'node:net';
import { once } from 'node:events';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Gateway } from '../../src/app';
import { gql, startTestGateway, type GraphQLResponse } from '../helpers/gateway';

/**
 * The probes an attacker tried (docs: issue "Hostile input and partial failure"), as fixed
 * cases: each is refused before any work with a typed error naming the limit, and costs
 * no upstream call. Timing is measured by `npm run probes`, not here.
 */
describe('hostile input is refused before any work, with a typed error naming the limit', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  const upstreamCalls = (): number => gateway.simulator!.counters.total;

  async function post(body: unknown): Promise<GraphQLResponse> {
    const response = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, ...((await response.json()) as object) };
  }

  it('stops parsing a 300,000-alias document at GRAPHQL_MAX_TOKENS', async () => {
    const aliases = Array.from({ length: 300_000 }, (_, i) => `a${i}: __typename`).join(' ');
    const res = await post({ query: `{ ${aliases} }` });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED', limit: 'GRAPHQL_MAX_TOKENS' });
    expect(res.errors![0]!.message).toMatch(/more than 2000 tokens \(GRAPHQL_MAX_TOKENS\)/);
  });

  it('counts aliased __typename against GRAPHQL_MAX_ALIASES (no loophole)', async () => {
    const aliases = Array.from({ length: 21 }, (_, i) => `a${i}: __typename`).join(' ');
    const res = await gql(gateway, `{ ${aliases} }`);
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'GRAPHQL_MAX_ALIASES' });
  });

  it('refuses fragments that multiply fields past GRAPHQL_MAX_FIELDS', async () => {
    // Each fragment spreads the one before it twice under two fields: 2^10 fields from ~100 tokens.
    const fragments = Array.from({ length: 10 }, (_, i) =>
      i === 0 ? 'fragment F0 on UpstreamStatus { mode circuit }' : `fragment F${i} on UpstreamStatus { mode ...F${i - 1} circuit ...F${i - 1} }`,
    );
    const res = await gql(gateway, `{ upstream { ...F9 } } ${fragments.join(' ')}`);
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'GRAPHQL_MAX_FIELDS' });
  });

  it('refuses 100,000 repeated fields at the token limit', async () => {
    const res = await post({ query: `{ upstream { ${'mode '.repeat(100_000)} } }` });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED', limit: 'GRAPHQL_MAX_TOKENS' });
  });

  it('refuses an operation name over GRAPHQL_MAX_OPERATION_NAME_LENGTH, in the document or the request', async () => {
    const name = 'N'.repeat(40_000);
    const inDocument = await gql(gateway, `query ${name} { __typename }`);
    expect(inDocument.status).toBe(400);
    expect(inDocument.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'GRAPHQL_MAX_OPERATION_NAME_LENGTH' });
    const inRequest = await post({ query: '{ __typename }', operationName: name });
    expect(inRequest.status).toBe(400);
    expect(inRequest.errors![0]!.extensions).toMatchObject({ code: 'BAD_REQUEST', limit: 'GRAPHQL_MAX_OPERATION_NAME_LENGTH' });
    // The name is never echoed back.
    expect(JSON.stringify(inRequest).length).toBeLessThan(2000);
  });

  it('refuses 200,000 messages at GRAPHQL_MAX_LIST_ITEMS without an upstream call', async () => {
    const before = upstreamCalls();
    const messages = Array.from({ length: 200_000 }, () => ({ role: 'USER', content: 'x' }));
    const res = await post({
      query: 'query ($input: CompletionInput!) { completion(input: $input) { id } }',
      variables: { input: { messages, cache: 'BYPASS' } },
    });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'GRAPHQL_MAX_LIST_ITEMS', field: 'input.messages' });
    expect(upstreamCalls()).toBe(before);
  });

  it('refuses 60,000 entity representations, and an unknown __typename, as BAD_USER_INPUT', async () => {
    const id = `cmpl_v1_${'A'.repeat(43)}`;
    const many = Array.from({ length: 60_000 }, () => ({ __typename: 'Completion', id }));
    const query = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Completion { id } } }';
    const tooMany = await post({ query, variables: { r: many } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'GRAPHQL_MAX_LIST_ITEMS' });

    const unknown = await post({ query, variables: { r: [{ __typename: 'Nope', id: 'x' }] } });
    expect(unknown.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'representations[0].__typename' });
  });

  it('types every variable error, the 51st ("too many errors") included', async () => {
    const res = await post({
      query: 'query ($inputs: [CompletionInput!]!) { completions(inputs: $inputs) { id } }',
      variables: { inputs: Array.from({ length: 60 }, () => 'x') },
    });
    expect(res.status).toBe(400);
    expect(res.errors!.length).toBeGreaterThan(50);
    expect(new Set(res.errors!.map((error) => error.extensions!.code))).toEqual(new Set(['BAD_USER_INPUT']));
  });

  it('answers an APQ hash that does not match its query with a 400 BAD_REQUEST, not an internal error', async () => {
    const res = await post({ query: '{ __typename }', extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions!.code).toBe('BAD_REQUEST');
  });

  it('serves 20 aliased `models` fields from one upstream call, and counts them against the budget', async () => {
    const before = gateway.simulator!.counters.byPath['/models'] ?? 0;
    const fields = Array.from({ length: 20 }, (_, i) => `m${i}: models { id }`).join(' ');
    const res = await gql(gateway, `{ ${fields} }`);
    expect(res.errors).toBeUndefined();
    expect((gateway.simulator!.counters.byPath['/models'] ?? 0) - before).toBe(1);

    const budget = await startTestGateway({ MAX_COMPLETIONS_PER_OPERATION: '3' });
    try {
      const over = await gql(budget, '{ a: models { id } b: models { id } c: balance { isAvailable } d: models { id } }');
      expect(over.errors!.map((error) => error.extensions!.limit)).toEqual(['MAX_COMPLETIONS_PER_OPERATION']);
    } finally {
      await budget.close();
    }
  });

  it('does not let a cross-site page start a paid stream over SSE (CSRF prevention on /graphql/stream)', async () => {
    const before = upstreamCalls();
    const query = encodeURIComponent('subscription { completionStream(input: {prompt: "x", thinking: false}) { delta } }');
    const simple = await fetch(`${gateway.url}/graphql/stream?query=${query}`, {
      headers: { accept: 'text/event-stream', origin: 'https://evil.example' },
    });
    expect(simple.status).toBe(400);
    expect(await simple.text()).toMatch(/Cross-Site Request Forgery/);
    const form = await fetch(`${gateway.url}/graphql/stream`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'text/plain', origin: 'https://evil.example' },
      body: JSON.stringify({ query: decodeURIComponent(query) }),
    });
    expect(form.status).toBe(400);
    await form.text();
    expect(upstreamCalls()).toBe(before);
  });

  it('ends a subscription past MAX_SUBSCRIPTIONS_PER_CONNECTION with a typed error', async () => {
    const limited = await startTestGateway({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '2', SIMULATOR_TOKEN_DELAY_MS: '20' });
    const client = createClient({ url: limited.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const outcome = (prompt: string) =>
        new Promise<unknown>((resolve) => {
          client.subscribe(
            { query: `subscription { completionStream(input: {prompt: "${prompt}", thinking: false}) { delta } }` },
            { next: () => undefined, error: resolve, complete: () => resolve('completed') },
          );
        });
      const first = outcome('one');
      const second = outcome('two');
      const third = await outcome('three');
      expect(third).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_REQUEST', limit: 'MAX_SUBSCRIPTIONS_PER_CONNECTION' }) })]);
      expect(await first).toBe('completed');
      expect(await second).toBe('completed');
    } finally {
      await client.dispose();
      await limited.close();
    }
  });

  it('refuses an over-long operation name over WebSocket before recording it anywhere', async () => {
    const client = createClient({ url: gateway.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const errors = await new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: 'subscription { completionStream(input: {prompt: "x"}) { delta } }', operationName: 'W'.repeat(1 << 20) },
          { next: () => undefined, error: resolve, complete: () => resolve(undefined) },
        );
      });
      expect(errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ limit: 'GRAPHQL_MAX_OPERATION_NAME_LENGTH' }) })]);
      // Apollo's internal status hint stays internal over WebSocket too (found by test/e2e/fuzz.test.ts).
      expect((errors as Array<{ extensions: object }>)[0]!.extensions).not.toHaveProperty('http');
    } finally {
      await client.dispose();
    }
  });
});

describe('sockets that send part of a request and go silent', () => {
  it('are cut after HTTP_REQUEST_TIMEOUT_MS, while other requests are served', async () => {
    const gateway = await startTestGateway({ HTTP_REQUEST_TIMEOUT_MS: '1000', HTTP_HEADERS_TIMEOUT_MS: '1000' });
    const { port } = new URL(gateway.url);
    try {
      const sockets = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const socket = connect(Number(port), '127.0.0.1');
          await once(socket, 'connect');
          socket.on('error', () => undefined);
          socket.resume(); // read whatever the server answers, so its close is seen
          socket.write('POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"query":');
          return socket;
        }),
      );
      // Served while the silent sockets are open.
      expect((await gql(gateway, '{ __typename }')).data).toEqual({ __typename: 'Query' });
      // Each is closed by the server (408 or a reset), not held until the client gives up.
      await Promise.all(sockets.map((socket) => (socket.closed ? undefined : once(socket, 'close'))));
      expect(sockets.every((socket) => socket.closed)).toBe(true);
    } finally {
      await gateway.close();
    }
  });
});

describe('in production', () => {
  it('shows no field suggestions ("Did you mean …")', async () => {
    const gateway = await startTestGateway({ NODE_ENV: 'production', AUTH_MODE: 'none', DEEPSEEK_API_KEY: 'sk-production-key-0000', WARMUP_OPERATIONS: '0' });
    try {
      const res = await gql(gateway, '{ upstreem { mode } }');
      expect(res.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(res.errors![0]!.message).toMatch(/upstreem/);
      expect(res.errors![0]!.message).not.toMatch(/Did you mean/);
    } finally {
      await gateway.close();
    }
  });
});
