import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Gateway } from '../../src/app';
import { chatCalls, COMPLETION_FIELDS, gql, startTestGateway } from '../helpers/gateway';
import { waitFor } from '../helpers/wait';
import { PROCESS_TEST_TIMEOUT_MS, START_TIMEOUT_MS } from '../helpers/service-process';

const STREAM = `subscription ($input: CompletionInput!) {
  completionStream(input: $input) {
    id index model delta reasoningDelta finishReason cached
    usage { promptTokens completionTokens totalTokens cacheHitTokens cacheMissTokens reasoningTokens }
  }
}`;
const COMPLETION = `query ($input: CompletionInput!) { completion(input: $input) { ${COMPLETION_FIELDS} } }`;

interface Chunk {
  id: string;
  index: number;
  model: string;
  delta: string;
  reasoningDelta: string | null;
  finishReason: string | null;
  cached: boolean;
  usage: Record<string, number | null> | null;
}

interface Completion {
  id: string;
  content: string;
  reasoningContent: string | null;
  finishReason: string;
  cached: boolean;
  usage: Record<string, number | null>;
}

interface GraphQLErrorJson {
  message: string;
  path?: Array<string | number>;
  extensions?: Record<string, unknown>;
}

/** One subscription seen from the client: every chunk, the errors, and how it ended. */
interface Subscription {
  readonly chunks: Chunk[];
  readonly errors: GraphQLErrorJson[] | undefined;
  /** Set when the socket failed or closed under the subscription (a CloseEvent or Error). */
  readonly failure: unknown;
  /** Settles when the server completed the subscription or the socket ended it. */
  readonly done: Promise<void>;
  unsubscribe(): void;
  text(): string;
  reasoning(): string;
  waitForChunks(count: number): Promise<void>;
}

describe('Subscription.completionStream over graphql-ws', () => {
  let gateway: Gateway;
  const clients: Client[] = [];

  /** A graphql-ws client like Apollo Client's GraphQLWsLink would open (disposed after each test). */
  function wsClient(target: Gateway = gateway, lazy = true): Client {
    const client = createClient({
      url: target.graphqlUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      lazy,
      retryAttempts: 0,
    });
    clients.push(client);
    return client;
  }

  /** A client whose socket is already open and acknowledged, so a subscription is one message. */
  async function connectedClient(): Promise<Client> {
    const client = wsClient(gateway, false);
    await new Promise<void>((resolve) => client.on('connected', () => resolve()));
    return client;
  }

  function subscribe(input: Record<string, unknown>, client: Client = wsClient()): Subscription {
    const chunks: Chunk[] = [];
    let errors: GraphQLErrorJson[] | undefined;
    let failure: unknown;
    let unsubscribe: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      unsubscribe = client.subscribe<{ completionStream: Chunk }>(
        { query: STREAM, variables: { input } },
        {
          next: (result) => {
            if (result.errors) errors = result.errors as GraphQLErrorJson[];
            else chunks.push(result.data!.completionStream);
          },
          error: (error) => {
            failure = error;
            resolve();
          },
          complete: () => resolve(),
        },
      );
    });
    return {
      chunks,
      get errors() {
        return errors;
      },
      get failure() {
        return failure;
      },
      done,
      unsubscribe: () => unsubscribe(),
      text: () => chunks.map((c) => c.delta).join(''),
      reasoning: () => chunks.map((c) => c.reasoningDelta ?? '').join(''),
      waitForChunks: (count) => waitFor(() => chunks.length >= count, { what: `${count} chunks` }),
    };
  }

  async function stream(input: Record<string, unknown>, client?: Client): Promise<Subscription> {
    const subscription = subscribe(input, client);
    await subscription.done;
    return subscription;
  }

  const query = (input: Record<string, unknown>) => gql<{ completion: Completion }>(gateway, COMPLETION, { input });

  beforeAll(async () => {
    gateway = await startTestGateway({
      // Small but non-zero: streams take a few hundred ms, so joiners and unsubscribes land mid-stream.
      SIMULATOR_TOKEN_DELAY_MS: '10',
      DEEPSEEK_BREAKER_MIN_CALLS: '1000',
      DEEPSEEK_RETRY_BASE_MS: '1',
      DEEPSEEK_RETRY_MAX_MS: '5',
    });
  });
  afterAll(async () => {
    await gateway.close();
  });
  afterEach(async () => {
    gateway.simulator!.faults.clear();
    gateway.simulator!.setOptions({ tokenDelayMs: 10 });
    await Promise.all(clients.splice(0).map((client) => client.dispose()));
  });

  it('streams deltas that join to exactly the text the completion query returns, then a last chunk with finish and usage', async () => {
    const input = { prompt: 'Explain server-sent events in one line.', thinking: false, cache: 'BYPASS' };
    const streamed = await stream(input);
    const queried = await query(input);

    expect(streamed.errors).toBeUndefined();
    const answer = queried.data!.completion;
    expect(streamed.text()).toBe(answer.content);
    expect(streamed.chunks.length).toBeGreaterThan(5);
    expect(streamed.chunks.map((c) => c.index)).toEqual(streamed.chunks.map((_, i) => i));
    expect(new Set(streamed.chunks.map((c) => c.id))).toEqual(new Set([answer.id]));
    expect(streamed.chunks.every((c) => c.model === 'deepseek-flash' && !c.cached && c.reasoningDelta === null)).toBe(true);
    const last = streamed.chunks.at(-1)!;
    expect(last).toMatchObject({ delta: '', finishReason: 'STOP' });
    expect(last.usage).toMatchObject({ completionTokens: answer.usage.completionTokens, totalTokens: answer.usage.totalTokens });
    expect(streamed.chunks.slice(0, -1).every((c) => c.finishReason === null && c.usage === null)).toBe(true);
    const sent = gateway.simulator!.requests.find((r) => (r.body as { stream?: boolean }).stream === true && JSON.stringify(r.body).includes('server-sent'));
    expect(sent?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('streams thinking mode: reasoningDelta chunks join to the reasoningContent of the query', async () => {
    const input = { prompt: 'Why is the sky blue?', reasoningEffort: 'MAX', cache: 'BYPASS' };
    const streamed = await stream(input);
    const answer = (await query(input)).data!.completion;

    expect(answer.reasoningContent).toBeTruthy();
    expect(streamed.reasoning()).toBe(answer.reasoningContent);
    expect(streamed.text()).toBe(answer.content);
    // Reasoning streams first, then the answer.
    const firstAnswer = streamed.chunks.findIndex((c) => c.delta !== '');
    const lastReasoning = streamed.chunks.map((c) => c.reasoningDelta !== null).lastIndexOf(true);
    expect(lastReasoning).toBeLessThan(firstAnswer);
    expect(streamed.chunks.at(-1)!.usage!.reasoningTokens).toBeGreaterThan(0);
  });

  it('10 identical concurrent subscribers share 1 upstream call and all receive the whole text', async () => {
    const before = chatCalls(gateway);
    const input = { prompt: 'ten listeners, one stream', thinking: false };
    const subscriptions = await Promise.all(Array.from({ length: 10 }, () => stream(input)));

    expect(chatCalls(gateway)).toBe(before + 1);
    const texts = new Set(subscriptions.map((s) => s.text()));
    expect(texts.size).toBe(1);
    expect([...texts][0]).toMatch(/^Simulated deepseek-flash answer/);
    expect(subscriptions.every((s) => s.errors === undefined && s.chunks.at(-1)!.finishReason === 'STOP')).toBe(true);
    expect(gateway.services.streams.stats().joined).toBeGreaterThanOrEqual(9);
    const status = await gql<{ upstream: { streams: { joined: number; activeStreams: number } } }>(
      gateway,
      '{ upstream { streams { joined activeStreams } } }',
    );
    expect(status.data!.upstream.streams.joined).toBeGreaterThanOrEqual(9);
    expect(status.data!.upstream.streams.activeStreams).toBe(0);
  });

  it('replays what was already streamed to a late joiner, then follows live', async () => {
    // About 1.4 s of stream (28 tokens). The joiner's socket is open beforehand, so joining
    // mid-stream takes one message, and over a second is left for it after the 4th chunk.
    gateway.simulator!.setOptions({ tokenDelayMs: 50 });
    const lateClient = await connectedClient();
    const before = chatCalls(gateway);
    const input = { prompt: 'a late joiner hears everything', thinking: false, cache: 'BYPASS' };
    const first = subscribe(input);
    await first.waitForChunks(4);
    const late = subscribe(input, lateClient);
    await late.waitForChunks(4);
    expect(first.chunks.at(-1)!.finishReason).toBeNull(); // the replay caught up while the stream ran on
    await Promise.all([first.done, late.done]);

    expect(chatCalls(gateway)).toBe(before + 1);
    expect(late.errors).toBeUndefined();
    expect(late.chunks).toEqual(first.chunks);
    expect(late.text()).toBe(first.text());
    expect(late.chunks[0].index).toBe(0);
    expect(gateway.services.streams.stats().joined).toBeGreaterThanOrEqual(1);
  });

  it('aborts the upstream request when every subscriber has unsubscribed', async () => {
    const simulator = gateway.simulator!;
    // A stream of ~8 s if left alone (28 tokens), far past the 5 s wait for its end below.
    simulator.setOptions({ tokenDelayMs: 300 });
    const input = { prompt: 'nobody listens to the end of this', thinking: false };
    const a = subscribe(input);
    const b = subscribe(input);
    await Promise.all([a.waitForChunks(2), b.waitForChunks(2)]);
    expect(simulator.counters.inFlight).toBe(1);
    const abandonedBefore = gateway.services.streams.stats().abandoned;

    a.unsubscribe();
    // Once the hub has let `a` go, the stream goes on for `b`: it gets another chunk.
    await waitFor(() => gateway.services.streams.stats().subscribers === 1, { what: 'the hub to drop the first subscriber' });
    await b.waitForChunks(b.chunks.length + 1);
    expect(simulator.counters.inFlight).toBe(1); // b still reads it
    expect(b.chunks.length).toBeGreaterThan(2);

    b.unsubscribe();
    // Released at once: the request ends within 5 s (no loaded machine takes that long to
    // pass an abort on) where it would otherwise stream for ~7 s more, and the hub counts
    // the stream abandoned (below).
    await waitFor(() => simulator.counters.inFlight === 0, { timeoutMs: 5_000, what: 'the upstream request to end' });
    const recorded = simulator.requests.filter((r) => JSON.stringify(r.body).includes('nobody listens'));
    expect(recorded).toHaveLength(1);
    expect(recorded[0].status).toBe(200);
    expect(gateway.services.streams.stats()).toMatchObject({ abandoned: abandonedBefore + 1, activeStreams: 0 });
    // The answer was never finished, so nothing was stored: a query calls DeepSeek.
    simulator.setOptions({ tokenDelayMs: 0 });
    const before = chatCalls(gateway);
    expect((await query(input)).data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('stores a finished stream under the query id, then answers queries and replays streams from the cache', async () => {
    const input = { prompt: 'stream once, read forever', thinking: true };
    const before = chatCalls(gateway);
    const live = await stream(input);
    expect(chatCalls(gateway)).toBe(before + 1);

    const queried = (await query(input)).data!.completion;
    expect(queried).toMatchObject({ id: live.chunks[0].id, cached: true, content: live.text(), reasoningContent: live.reasoning() });

    const replayed = await stream(input);
    expect(chatCalls(gateway)).toBe(before + 1);
    expect(replayed.errors).toBeUndefined();
    expect(replayed.chunks.every((c) => c.cached && c.id === queried.id)).toBe(true);
    expect(replayed.text()).toBe(live.text());
    expect(replayed.reasoning()).toBe(live.reasoning());
    expect(replayed.chunks.at(-1)).toMatchObject({ finishReason: 'STOP', usage: live.chunks.at(-1)!.usage });
  });

  it('replays an answer a query stored', async () => {
    const input = { prompt: 'query first, stream later', thinking: false };
    const queried = (await query(input)).data!.completion;
    const before = chatCalls(gateway);
    const replayed = await stream(input);
    expect(chatCalls(gateway)).toBe(before);
    expect(replayed.text()).toBe(queried.content);
    expect(replayed.chunks.every((c) => c.cached)).toBe(true);
  });

  it('BYPASS neither reads nor writes the cache', async () => {
    const input = { prompt: 'bypass the store', thinking: false };
    const before = chatCalls(gateway);
    await stream({ ...input, cache: 'BYPASS' });
    expect((await query(input)).data!.completion.cached).toBe(false); // nothing was stored
    expect(chatCalls(gateway)).toBe(before + 2);

    const again = await stream({ ...input, cache: 'BYPASS' }); // the query stored it; BYPASS does not read it
    expect(chatCalls(gateway)).toBe(before + 3);
    expect(again.chunks.every((c) => !c.cached)).toBe(true);
  });

  it('REFRESH skips the read but stores the new answer', async () => {
    const input = { prompt: 'refresh the store', thinking: false };
    const stored = (await query(input)).data!.completion;
    const before = chatCalls(gateway);
    const refreshed = await stream({ ...input, cache: 'REFRESH' });
    expect(chatCalls(gateway)).toBe(before + 1);
    expect(refreshed.chunks.every((c) => !c.cached)).toBe(true);

    // Evicted, then written again by a REFRESH stream: the next query is a hit.
    await gql(gateway, 'mutation ($id: ID!) { evictCompletion(id: $id) }', { id: stored.id });
    await stream({ ...input, cache: 'REFRESH' });
    const after = chatCalls(gateway);
    expect((await query(input)).data!.completion).toMatchObject({ cached: true, content: refreshed.text() });
    expect(chatCalls(gateway)).toBe(after);
  });

  it('ends a truncated upstream stream with a typed error and stores nothing', async () => {
    const input = { prompt: 'cut me short', thinking: false };
    gateway.simulator!.faults.inject({ kind: 'truncate', afterChunks: 4 }, { path: '/chat/completions' });
    const truncated = await stream(input);

    expect(truncated.chunks.length).toBeGreaterThan(0);
    expect(truncated.chunks.every((c) => c.finishReason === null)).toBe(true);
    expect(truncated.errors).toHaveLength(1);
    expect(truncated.errors![0]).toMatchObject({
      message: 'DeepSeek stream truncated before it finished',
      path: ['completionStream'],
      extensions: { code: 'UPSTREAM_UNAVAILABLE', upstreamStatus: 200 },
    });
    expect(truncated.failure).toBeUndefined(); // a GraphQL error, then a clean complete
    expect((await query(input)).data!.completion.cached).toBe(false);
  });

  it('reports a 429 that outlasts the retries as UPSTREAM_RATE_LIMITED', async () => {
    gateway.simulator!.faults.inject({ kind: 'status', status: 429 }, { path: '/chat/completions', count: 3 });
    const limited = await stream({ prompt: 'rate limited', cache: 'BYPASS' });
    expect(limited.chunks).toHaveLength(0);
    expect(limited.errors![0].extensions).toMatchObject({ code: 'UPSTREAM_RATE_LIMITED', upstreamStatus: 429 });
  });

  it('rejects invalid input with BAD_USER_INPUT before any upstream call', async () => {
    const before = chatCalls(gateway);
    const invalid = await stream({ prompt: 'too hot', thinking: false, temperature: 5 });
    expect(invalid.chunks).toHaveLength(0);
    expect(invalid.errors![0]).toMatchObject({
      path: ['completionStream'],
      extensions: { code: 'BAD_USER_INPUT', field: 'input.temperature' },
    });
    expect(chatCalls(gateway)).toBe(before);
  });

  it('answers protocol-level mistakes with Apollo request codes: validation, variables, and non-subscriptions', async () => {
    const client = wsClient();
    const failureOf = async (payload: { query: string; variables?: Record<string, unknown> }) => {
      try {
        for await (const _ of client.iterate(payload)) {
          // no result expected
        }
      } catch (error) {
        return error as GraphQLErrorJson[];
      }
      throw new Error('expected an error');
    };
    expect((await failureOf({ query: 'subscription { nope }' }))[0].extensions).toEqual({ code: 'GRAPHQL_VALIDATION_FAILED' });
    expect((await failureOf({ query: 'subscription {' }))[0].extensions).toEqual({ code: 'GRAPHQL_PARSE_FAILED' });
    expect((await failureOf({ query: STREAM, variables: { input: { prompt: 3 } } }))[0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
    });
    const aliases = Array.from({ length: 21 }, (_, i) => `a${i}: delta`).join(' ');
    const tooManyAliases = await failureOf({ query: `subscription { completionStream(input: {prompt: "x"}) { ${aliases} } }` });
    expect(tooManyAliases[0]).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' }, message: expect.stringMatching(/Aliases limit/) });
    const queryOverWs = await failureOf({ query: '{ upstream { mode } }' });
    expect(queryOverWs[0]).toMatchObject({ extensions: { code: 'BAD_REQUEST' }, message: expect.stringMatching(/over HTTP/) });
  });
});

describe('completionStream when DeepSeek refuses before the first token', () => {
  // A 402 takes the only key out of rotation, so this gets a gateway of its own.
  let gateway: Gateway;
  let client: Client;

  beforeAll(async () => {
    gateway = await startTestGateway();
    client = createClient({ url: gateway.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  });
  afterAll(async () => {
    await client.dispose();
    await gateway.close();
  });

  it('reports 402 as a typed error, with no key or raw body, and no chunk', async () => {
    const before = chatCalls(gateway);
    gateway.simulator!.faults.inject({ kind: 'status', status: 402 }, { path: '/chat/completions' });
    const results: Array<{ data?: unknown; errors?: readonly unknown[] }> = [];
    for await (const result of client.iterate({ query: STREAM, variables: { input: { prompt: 'no balance', cache: 'BYPASS' } } })) {
      results.push(result);
    }

    expect(results).toHaveLength(1);
    expect(results[0].data).toBeNull();
    const errors = results[0].errors as GraphQLErrorJson[];
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      path: ['completionStream'],
      extensions: { code: 'UPSTREAM_INSUFFICIENT_BALANCE', upstreamStatus: 402 },
    });
    expect(errors[0].extensions!.upstreamTraceId).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(errors)).not.toMatch(/sk-sim|invalid_request_error|Insufficient Balance/);
    expect(chatCalls(gateway)).toBe(before + 1); // 402 is not retried
  });
});

describe('completionStream when the circuit is open', () => {
  let gateway: Gateway;
  let client: Client;

  beforeAll(async () => {
    gateway = await startTestGateway({ DEEPSEEK_BREAKER_MIN_CALLS: '1', DEEPSEEK_MAX_RETRIES: '0', DEEPSEEK_BREAKER_COOLDOWN_MS: '60000' });
    client = createClient({ url: gateway.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
  });
  afterAll(async () => {
    await client.dispose();
    await gateway.close();
  });

  async function errorsOf(prompt: string): Promise<GraphQLErrorJson[]> {
    for await (const result of client.iterate({ query: STREAM, variables: { input: { prompt, cache: 'BYPASS' } } })) {
      if (result.errors) return result.errors as GraphQLErrorJson[];
    }
    throw new Error('expected errors');
  }

  it('fails fast with UPSTREAM_UNAVAILABLE and makes no upstream call', async () => {
    gateway.simulator!.faults.inject({ kind: 'status', status: 500 }, { path: '/chat/completions' });
    expect((await errorsOf('opens the circuit'))[0].extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', upstreamStatus: 500 });
    const before = chatCalls(gateway);
    const [open] = await errorsOf('circuit is open');
    expect(open.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(open.message).toMatch(/circuit open/);
    expect(chatCalls(gateway)).toBe(before);
  });
});

describe('completionStream during shutdown', () => {
  it('closes subscriptions still open after the grace period with 1001 Going away, releases the upstream, and close() resolves', async () => {
    // A grace period far shorter than the stream: the drain waits for it, then cuts it.
    const gateway = await startTestGateway({ SIMULATOR_TOKEN_DELAY_MS: '50', SHUTDOWN_GRACE_MS: '100' });
    const client = createClient({ url: gateway.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const chunks: unknown[] = [];
      let closedWith: unknown;
      const ended = new Promise<void>((resolve) => {
        client.subscribe(
          { query: STREAM, variables: { input: { prompt: 'shut down while I stream', thinking: false } } },
          {
            next: (result) => chunks.push(result),
            error: (error) => {
              closedWith = error;
              resolve();
            },
            complete: () => resolve(),
          },
        );
      });
      await waitFor(() => chunks.length >= 2);
      expect(gateway.services.streams.stats().activeStreams).toBe(1);

      const started = Date.now();
      await gateway.close();
      // A no-hang bound, generous for a loaded machine. That close cut the stream instead of
      // waiting for its end is the 1001 below: a stream that finished would complete.
      expect(Date.now() - started).toBeLessThan(5000);
      await ended;
      expect((closedWith as { code?: number } | undefined)?.code).toBe(1001);
      expect(gateway.services.streams.stats()).toMatchObject({ activeStreams: 0, subscribers: 0 });
    } finally {
      await client.dispose();
      await gateway.close();
    }
  });

  it('lets a subscription that ends within SHUTDOWN_GRACE_MS finish, refuses new ones meanwhile, and counts no upstream failure', async () => {
    const gateway = await startTestGateway({ SIMULATOR_TOKEN_DELAY_MS: '20', SHUTDOWN_GRACE_MS: '20000' });
    const client = createClient({ url: gateway.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const chunks: Array<{ data?: { completionStream: { delta: string; finishReason: string | null } } }> = [];
      const ended = new Promise<string>((resolve) => {
        client.subscribe(
          { query: STREAM, variables: { input: { prompt: 'finish me while the gateway drains', thinking: false } } },
          { next: (result) => void chunks.push(result as (typeof chunks)[number]), error: () => resolve('error'), complete: () => resolve('complete') },
        );
      });
      await waitFor(() => chunks.length >= 2);
      const closing = gateway.close();
      // A subscription started during the drain is refused with OVERLOADED.
      const refused = await new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: STREAM, variables: { input: { prompt: 'too late', thinking: false } } },
          { next: () => undefined, error: resolve, complete: () => resolve('complete') },
        );
      });
      expect(refused).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'OVERLOADED' }) })]);
      expect(await ended).toBe('complete');
      expect(chunks.at(-1)!.data!.completionStream.finishReason).toBe('STOP');
      await closing;
      expect(gateway.services.deepseek.status()).toMatchObject({ failures: 0, circuit: 'CLOSED' });
    } finally {
      await client.dispose();
      await gateway.close();
    }
  });
});

describe('the service process with a subscription open', () => {
  it('exits 0 on SIGTERM, closing the subscription with 1001', async () => {
    // The same command as `npm start`, so the signal reaches node itself.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: join(__dirname, '..', '..'),
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', SIMULATOR_TOKEN_DELAY_MS: '50', SHUTDOWN_GRACE_MS: '100' },
    });
    let client: Client | undefined;
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`service did not start:\n${output}`)), START_TIMEOUT_MS);
        child.stdout.on('data', (data: Buffer) => {
          output += data.toString();
          const match = /"url":"(http:[^"]+)"[^\n]*"msg":"gateway listening"/.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      client = createClient({ url: url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
      let chunks = 0;
      let closedWith: unknown;
      client.subscribe(
        { query: STREAM, variables: { input: { prompt: 'still streaming at SIGTERM' } } },
        { next: () => (chunks += 1), error: (error) => (closedWith = error), complete: () => undefined },
      );
      await waitFor(() => chunks >= 2);

      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
      await waitFor(() => closedWith !== undefined);
      expect((closedWith as { code?: number }).code).toBe(1001);
    } finally {
      await client?.dispose();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, PROCESS_TEST_TIMEOUT_MS);
});
