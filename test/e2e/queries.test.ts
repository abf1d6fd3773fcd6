import type { Gateway } from '../../src/app';
import { simulatedAnswer } from '../../src/simulator';
import { chatCalls, COMPLETION_FIELDS, gql, startTestGateway } from '../helpers/gateway';

interface CompletionData {
  id: string;
  model: string;
  content: string;
  reasoningContent: string | null;
  finishReason: string;
  cached: boolean;
  createdAt: string;
  usage: Record<string, number | null>;
}

describe('queries and mutations over HTTP against the simulator', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });
  beforeEach(() => {
    gateway.simulator!.faults.clear();
  });

  const COMPLETION = `query ($input: CompletionInput!) { completion(input: $input) { ${COMPLETION_FIELDS} } }`;

  it('answers a prompt with the simulator content, reasoning and usage', async () => {
    const before = chatCalls(gateway);
    const res = await gql<{ completion: CompletionData }>(gateway, COMPLETION, { input: { prompt: 'What is a monad?' } });
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    const completion = res.data!.completion;
    const sent = gateway.simulator!.requests.at(-1)!;
    expect(sent.path).toBe('/chat/completions');
    expect(sent.headers.authorization).toMatch(/^Bearer sk-sim-/);
    const expected = simulatedAnswer(sent.body as Record<string, unknown>);
    expect(completion.content).toBe(expected.content);
    expect(completion.reasoningContent).toBe(expected.reasoningContent);
    expect(completion.reasoningContent).not.toBeNull(); // thinking is on by default
    expect(completion.model).toBe('deepseek-flash');
    expect(completion.finishReason).toBe('STOP');
    expect(completion.cached).toBe(false);
    expect(completion.id).toMatch(/^cmpl_v1_/);
    expect(new Date(completion.createdAt).toISOString()).toBe(completion.createdAt);
    expect(completion.usage.totalTokens).toBe(completion.usage.promptTokens! + completion.usage.completionTokens!);
    expect(completion.usage.promptTokens).toBe(completion.usage.cacheHitTokens! + completion.usage.cacheMissTokens!);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('sends thinking, reasoning effort and sampling parameters in the wire format', async () => {
    await gql(gateway, COMPLETION, {
      input: { prompt: 'wire check', thinking: false, temperature: 0.3, topP: 0.9, maxTokens: 50, stop: ['END'] },
    });
    const body = gateway.simulator!.requests.at(-1)!.body as Record<string, unknown>;
    expect(body).toMatchObject({
      model: 'deepseek-flash',
      messages: [{ role: 'user', content: 'wire check' }],
      thinking: { type: 'disabled' },
      temperature: 0.3,
      top_p: 0.9,
      max_tokens: 50,
      stop: ['END'],
      stream: false,
    });
    expect(body).not.toHaveProperty('reasoning_effort');
  });

  it('treats prompt+system and the same messages as one question (one id, one call)', async () => {
    const before = chatCalls(gateway);
    const a = await gql<{ completion: CompletionData }>(gateway, COMPLETION, {
      input: { prompt: 'Same question?', system: 'Be brief.' },
    });
    const b = await gql<{ completion: CompletionData }>(gateway, COMPLETION, {
      input: {
        messages: [
          { role: 'SYSTEM', content: 'Be brief.' },
          { role: 'USER', content: 'Same question?' },
        ],
      },
    });
    expect(a.data!.completion.id).toBe(b.data!.completion.id);
    expect(b.data!.completion.cached).toBe(true);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('serves legacy model aliases as deepseek-flash', async () => {
    const res = await gql<{ completion: CompletionData }>(gateway, COMPLETION, {
      input: { prompt: 'alias', model: 'deepseek-v4-flash', cache: 'BYPASS' },
    });
    expect(res.data!.completion.model).toBe('deepseek-flash');
    expect((gateway.simulator!.requests.at(-1)!.body as { model: string }).model).toBe('deepseek-flash');
  });

  it('uses deepseek-v4-pro when asked', async () => {
    const res = await gql<{ completion: CompletionData }>(gateway, COMPLETION, {
      input: { prompt: 'pro please', model: 'deepseek-v4-pro', thinking: false },
    });
    expect(res.data!.completion.model).toBe('deepseek-v4-pro');
    expect(res.data!.completion.reasoningContent).toBeNull();
  });

  it('reports LENGTH when maxTokens cuts the answer', async () => {
    const res = await gql<{ completion: CompletionData }>(gateway, COMPLETION, {
      input: { prompt: 'a long answer please', maxTokens: 2, thinking: false },
    });
    expect(res.data!.completion.finishReason).toBe('LENGTH');
    expect(res.data!.completion.usage.completionTokens).toBeLessThanOrEqual(2);
  });

  it('answers JSON_OBJECT with a JSON document', async () => {
    const res = await gql<{ completion: CompletionData }>(gateway, COMPLETION, {
      input: { prompt: 'Reply in json: list two colours', responseFormat: 'JSON_OBJECT', thinking: false },
    });
    expect(() => JSON.parse(res.data!.completion.content) as unknown).not.toThrow();
    expect((gateway.simulator!.requests.at(-1)!.body as { response_format: unknown }).response_format).toEqual({
      type: 'json_object',
    });
  });

  it('runs a fill-in-the-middle completion on /beta/completions', async () => {
    const res = await gql<{ fimCompletion: CompletionData }>(
      gateway,
      `query ($input: FimInput!) { fimCompletion(input: $input) { ${COMPLETION_FIELDS} } }`,
      { input: { prompt: 'def add(a, b):\n    ', suffix: '\n\nprint(add(1, 2))', maxTokens: 64 } },
    );
    expect(res.errors).toBeUndefined();
    const sent = gateway.simulator!.requests.at(-1)!;
    expect(sent.path).toBe('/beta/completions');
    expect(sent.body).toMatchObject({ prompt: 'def add(a, b):\n    ', suffix: '\n\nprint(add(1, 2))', max_tokens: 64 });
    expect(res.data!.fimCompletion.content).toBe(simulatedAnswer(sent.body as Record<string, unknown>).content);
    expect(res.data!.fimCompletion.reasoningContent).toBeNull();
  });

  it('lists models with their metadata and reads the balance', async () => {
    const res = await gql<{ models: Array<Record<string, unknown>>; balance: Record<string, unknown> }>(
      gateway,
      `{ models { id ownedBy name contextWindow maxOutputTokens inputModalities reasoningEffortLevels defaultReasoningEffort }
         balance { isAvailable balances { currency totalBalance grantedBalance toppedUpBalance } } }`,
    );
    expect(res.errors).toBeUndefined();
    const ids = res.data!.models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['deepseek-flash', 'deepseek-v4-pro']));
    const flash = res.data!.models.find((m) => m.id === 'deepseek-flash')!;
    expect(flash).toMatchObject({ ownedBy: 'deepseek', contextWindow: 1048576, maxOutputTokens: 393216 });
    expect(res.data!.balance.isAvailable).toBe(true);
    const [info] = res.data!.balance.balances as Array<Record<string, string>>;
    expect(info!.totalBalance).toMatch(/^\d+\.\d{2}$/);
  });

  it('reports upstream mode, circuit and figures without exposing the key', async () => {
    const res = await gql<{ upstream: Record<string, unknown> }>(
      gateway,
      `{ upstream { mode defaultModel circuit inFlight queued maxConcurrency maxQueue calls failures retries
           keys { fingerprint active reason } cache { store available hits misses writes errors entries }
           coalescing { upstreamCalls joinedInFlight batches meanBatchSize } } }`,
    );
    expect(res.errors).toBeUndefined();
    const upstream = res.data!.upstream;
    expect(upstream).toMatchObject({ mode: 'SIMULATOR', defaultModel: 'deepseek-flash', circuit: 'CLOSED', inFlight: 0 });
    expect((upstream.cache as Record<string, unknown>).store).toBe('memory');
    const keys = upstream.keys as Array<{ fingerprint: string; active: boolean }>;
    expect(keys).toHaveLength(1);
    expect(keys[0]!.active).toBe(true);
    expect(JSON.stringify(res)).not.toMatch(/sk-sim-/);
  });

  it('createCompletion generates anew even when an answer is stored, then stores it', async () => {
    const input = { prompt: 'mutation check', thinking: false };
    const first = await gql<{ completion: CompletionData }>(gateway, COMPLETION, { input });
    const before = chatCalls(gateway);
    const created = await gql<{ createCompletion: CompletionData }>(
      gateway,
      `mutation ($input: CompletionInput!) { createCompletion(input: $input) { ${COMPLETION_FIELDS} } }`,
      { input },
    );
    expect(chatCalls(gateway)).toBe(before + 1);
    expect(created.data!.createCompletion.cached).toBe(false);
    expect(created.data!.createCompletion.id).toBe(first.data!.completion.id);
    const again = await gql<{ completion: CompletionData }>(gateway, COMPLETION, { input });
    expect(again.data!.completion.cached).toBe(true);
    expect(again.data!.completion.createdAt).toBe(created.data!.createCompletion.createdAt);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('evictCompletion removes a stored answer so the next query calls upstream', async () => {
    const input = { prompt: 'evict me', thinking: false };
    const first = await gql<{ completion: CompletionData }>(gateway, COMPLETION, { input });
    const evicted = await gql<{ evictCompletion: boolean }>(gateway, `mutation ($id: ID!) { evictCompletion(id: $id) }`, {
      id: first.data!.completion.id,
    });
    expect(evicted.data!.evictCompletion).toBe(true);
    const again = await gql<{ evictCompletion: boolean }>(gateway, `mutation ($id: ID!) { evictCompletion(id: $id) }`, {
      id: first.data!.completion.id,
    });
    expect(again.data!.evictCompletion).toBe(false);
    const before = chatCalls(gateway);
    const refetched = await gql<{ completion: CompletionData }>(gateway, COMPLETION, { input });
    expect(refetched.data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('completions: duplicates cost one call and a failed item is null with its own error', async () => {
    const before = chatCalls(gateway);
    const res = await gql<{ completions: Array<CompletionData | null> }>(
      gateway,
      `query ($inputs: [CompletionInput!]!) { completions(inputs: $inputs) { id content cached } }`,
      {
        inputs: [
          { prompt: 'list item A', thinking: false },
          { prompt: 'list item A', thinking: false },
          { prompt: 'list item B', thinking: false },
          { prompt: 'list item C', thinking: false, temperature: 7 },
        ],
      },
    );
    expect(res.status).toBe(200);
    const [a1, a2, b, bad] = res.data!.completions;
    expect(a1!.id).toBe(a2!.id);
    expect(b!.id).not.toBe(a1!.id);
    expect(bad).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.path).toEqual(['completions', 3]);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inputs[3].temperature' });
    expect(chatCalls(gateway)).toBe(before + 2);
  });

  it('resolves a Completion entity by id from the cache, and an unknown id to null without a call', async () => {
    const stored = await gql<{ completion: CompletionData }>(gateway, COMPLETION, { input: { prompt: 'entity' } });
    const id = stored.data!.completion.id;
    const before = chatCalls(gateway);
    const res = await gql<{ _entities: Array<{ id: string; content: string; cached: boolean } | null> }>(
      gateway,
      `query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on Completion { id content cached } } }`,
      {
        reps: [
          { __typename: 'Completion', id },
          { __typename: 'Completion', id: 'cmpl_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
          { __typename: 'Completion', id: 'not-an-id' },
        ],
      },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!._entities[0]).toEqual({ id, content: stored.data!.completion.content, cached: true });
    expect(res.data!._entities[1]).toBeNull();
    expect(res.data!._entities[2]).toBeNull();
    expect(chatCalls(gateway)).toBe(before);
  });

  it('exposes the federation SDL through _service', async () => {
    const res = await gql<{ _service: { sdl: string } }>(gateway, '{ _service { sdl } }');
    expect(res.data!._service.sdl).toContain('type Completion');
    expect(res.data!._service.sdl).toMatch(/@key\(fields: "id"\)/);
  });
});
