import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Gateway } from '../../src/app';
import { gql, startTestGateway } from '../helpers/gateway';

describe('input validation happens before any upstream call', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  const COMPLETION = `query ($input: CompletionInput!) { completion(input: $input) { id } }`;
  const FIM = `query ($input: FimInput!) { fimCompletion(input: $input) { id } }`;

  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ['neither prompt nor messages', COMPLETION, {}, 'input.prompt'],
    ['both prompt and messages', COMPLETION, { prompt: 'a', messages: [{ role: 'USER', content: 'b' }] }, 'input.messages'],
    ['an empty prompt', COMPLETION, { prompt: '   ' }, 'input.prompt'],
    ['an empty messages list', COMPLETION, { messages: [] }, 'input.messages'],
    ['an empty message', COMPLETION, { messages: [{ role: 'USER', content: 'ok' }, { role: 'USER', content: '' }] }, 'input.messages[1].content'],
    ['system with messages', COMPLETION, { system: 's', messages: [{ role: 'USER', content: 'b' }] }, 'input.system'],
    ['temperature above 2', COMPLETION, { prompt: 'x', temperature: 2.5 }, 'input.temperature'],
    ['negative temperature', COMPLETION, { prompt: 'x', temperature: -0.1 }, 'input.temperature'],
    ['topP of 0', COMPLETION, { prompt: 'x', topP: 0 }, 'input.topP'],
    ['topP above 1', COMPLETION, { prompt: 'x', topP: 1.01 }, 'input.topP'],
    ['maxTokens of 0', COMPLETION, { prompt: 'x', maxTokens: 0 }, 'input.maxTokens'],
    ['maxTokens above 393216', COMPLETION, { prompt: 'x', maxTokens: 393217 }, 'input.maxTokens'],
    ['17 stop sequences', COMPLETION, { prompt: 'x', stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, 'input.stop'],
    ['an empty stop sequence', COMPLETION, { prompt: 'x', stop: ['ok', ''] }, 'input.stop[1]'],
    ['an unknown model', COMPLETION, { prompt: 'x', model: 'gpt-5' }, 'input.model'],
    ['the retired deepseek-chat', COMPLETION, { prompt: 'x', model: 'deepseek-chat' }, 'input.model'],
    ['JSON_OBJECT without the word json', COMPLETION, { prompt: 'x', responseFormat: 'JSON_OBJECT' }, 'input.responseFormat'],
    ['reasoningEffort with thinking off', COMPLETION, { prompt: 'x', thinking: false, reasoningEffort: 'MAX' }, 'input.reasoningEffort'],
    ['an empty FIM prompt', FIM, { prompt: '' }, 'input.prompt'],
    ['a FIM temperature above 2', FIM, { prompt: 'x', temperature: 3 }, 'input.temperature'],
  ];

  it.each(cases)('rejects %s as BAD_USER_INPUT naming the field', async (_name, query, input, field) => {
    const before = gateway.simulator!.counters.total;
    const res = await gql(gateway, query, { input });
    expect(res.status).toBe(200);
    expect(res.data).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.extensions).toEqual({ code: 'BAD_USER_INPUT', field });
    expect(res.errors![0]!.message.length).toBeGreaterThan(10);
    expect(gateway.simulator!.counters.total).toBe(before);
  });

  it('rejects a completions list longer than MAX_COMPLETIONS_PER_OPERATION', async () => {
    const before = gateway.simulator!.counters.total;
    const inputs = Array.from({ length: 101 }, (_, i) => ({ prompt: `item ${i}` }));
    const res = await gql(gateway, 'query ($inputs: [CompletionInput!]!) { completions(inputs: $inputs) { id } }', { inputs });
    expect(res.errors![0]!.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'inputs', limit: 'MAX_COMPLETIONS_PER_OPERATION' });
    expect(gateway.simulator!.counters.total).toBe(before);
  });

  it('counts completion fields and list items together against MAX_COMPLETIONS_PER_OPERATION', async () => {
    const before = gateway.simulator!.counters.total;
    const inputs = Array.from({ length: 60 }, (_, i) => ({ prompt: `budget item ${i}`, thinking: false }));
    const res = await gql<{ a: unknown[] | null; b: unknown[] | null }>(
      gateway,
      'query ($inputs: [CompletionInput!]!) { a: completions(inputs: $inputs) { id } b: completions(inputs: $inputs) { id } }',
      { inputs },
    );
    // The first field fits the budget of 100; the second would take it to 120. Both root
    // fields are non-null, so the refusal nulls `data`.
    expect(res.data).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!).toMatchObject({ path: ['b'], extensions: { code: 'BAD_USER_INPUT', field: 'inputs' } });
    expect(gateway.simulator!.counters.total).toBe(before + 60);
  });

  it('refuses an operation with more aliases than GRAPHQL_MAX_ALIASES before running anything', async () => {
    const before = gateway.simulator!.counters.total;
    const fields = Array.from({ length: 21 }, (_, i) => `a${i}: completion(input: {prompt: "alias ${i}"}) { id }`).join(' ');
    const res = await gql(gateway, `{ ${fields} }`);
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors![0]!.message).toMatch(/alias/i);
    expect(gateway.simulator!.counters.total).toBe(before);
  });

  it('accepts the deepest selection the schema has, and deep introspection', async () => {
    const deep = await gql(
      gateway,
      '{ completion(input: {prompt: "x"}) { id ...A } } fragment A on Completion { usage { ...B } } fragment B on Usage { promptTokens }',
    );
    expect(deep.errors).toBeUndefined();
    const introspection = await gql(
      gateway,
      '{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }',
    );
    expect(introspection.errors).toBeUndefined();
  });

  it('rejects a variable of the wrong type with BAD_USER_INPUT from GraphQL itself', async () => {
    const res = await gql(gateway, COMPLETION, { input: { prompt: 'x', maxTokens: 'many' } });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });

  it('rejects an invalid query with GRAPHQL_VALIDATION_FAILED', async () => {
    const res = await gql(gateway, '{ completion { nope } }');
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  // graphql-js 16's own subscription rule threw on these (a 500, a 4500 close); see
  // src/graphql/limits/subscription-root.ts.
  it.each([
    ['@include without if', 'subscription { __typename @include }'],
    ['@include(if: $x) through a fragment', 'subscription S($x: Boolean!) { ...F } fragment F on Subscription { completionStream(input: {prompt: "x"}) @include(if: $x) { delta } }'],
  ])('refuses %s at a subscription top level with GRAPHQL_VALIDATION_FAILED over HTTP, SSE and WebSocket', async (_what, query) => {
    const refusal = expect.objectContaining({ message: expect.stringMatching(/must not use "@include" in its top-level selection/), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    const http = await gql(gateway, query, { x: true });
    expect(http.status).toBe(400);
    expect(http.errors![0]).toEqual(refusal);

    const sse = await fetch(`${gateway.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query, variables: { x: true } }),
    });
    expect(sse.status).toBe(400);
    expect(((await sse.json()) as { errors: unknown[] }).errors[0]).toEqual(refusal);

    const client = createClient({ url: gateway.graphqlUrl.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const errors = await new Promise<unknown>((resolve) => {
        client.subscribe({ query, variables: { x: true } }, { next: () => undefined, error: resolve, complete: () => resolve('completed') });
      });
      expect((errors as unknown[])[0]).toEqual(refusal);
    } finally {
      await client.dispose();
    }
  });
});

describe('GRAPHQL_MAX_DEPTH', () => {
  it('refuses a selection deeper than the limit, fragments included, with GRAPHQL_VALIDATION_FAILED', async () => {
    const gateway = await startTestGateway({ GRAPHQL_MAX_DEPTH: '2' });
    try {
      const res = await gql(gateway, '{ upstream { ...U } } fragment U on UpstreamStatus { cache { store } }');
      expect(res.status).toBe(400);
      expect(res.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(res.errors![0]!.message).toMatch(/depth/i);
      const shallow = await gql(gateway, '{ upstream { mode } }');
      expect(shallow.errors).toBeUndefined();
    } finally {
      await gateway.close();
    }
  });
});
