import { randomUUID } from 'node:crypto';
import type { Gateway } from '../../src/app';
import { startSimulator, type Simulator } from '../../src/simulator';
import { RedisServer } from '../cache/redis-server';
import { chatCalls, gql, startTestGateway } from '../helpers/gateway';
import { startHeldUpstream, type HeldUpstream } from '../helpers/held-upstream';
import { payloads, readMultipart } from '../helpers/multipart';
import { waitFor } from '../helpers/wait';

const COMPLETION = `query ($input: CompletionInput!) { completion(input: $input) { id content cached createdAt } }`;

interface Answer {
  completion: { id: string; content: string; cached: boolean; createdAt: string };
}

const ask = (gateway: Gateway, input: Record<string, unknown>) => gql<Answer>(gateway, COMPLETION, { input });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Asks until the answer comes from the store (within 10 s). An answer goes out as soon as
 * its upstream call ends and is written to Redis just after, and the Redis client may
 * still be (re)connecting: an immediate second ask can miss, a later one must hit.
 */
async function becomesCached(gateway: Gateway, prompt: string): Promise<boolean> {
  return waitFor(async () => (await ask(gateway, { prompt })).data!.completion.cached, { intervalMs: 100 }).then(
    () => true,
    () => false,
  );
}

describe('coalescing over HTTP', () => {
  const KEY = 'sk-coalescing-test-key-01';
  let simulator: Simulator;
  let upstream: HeldUpstream;
  let gateway: Gateway;

  beforeAll(async () => {
    // The simulator behind a stand-in that holds the upstream call until every request has
    // arrived: on a loaded machine 200 requests can take most of a second to come in.
    simulator = await startSimulator({ apiKeys: [KEY] });
    upstream = await startHeldUpstream(simulator.url);
    gateway = await startTestGateway({ DEEPSEEK_API_KEY: KEY, DEEPSEEK_BASE_URL: upstream.url });
  });
  afterAll(async () => {
    await gateway.close();
    await upstream.close();
    await simulator.close();
  });

  it('200 concurrent identical queries from separate HTTP requests make exactly 1 upstream call', async () => {
    const chatCallsMade = (): number => simulator.counters.byPath['/chat/completions'] ?? 0;
    const loads = (): number => gateway.services.completions.stats().upstreamCalls + gateway.services.completions.stats().joinedInFlight;
    const before = chatCallsMade();
    const loadsBefore = loads();
    const pending = Promise.all(
      Array.from({ length: 200 }, () => ask(gateway, { prompt: 'the same question, 200 times', thinking: false })),
    );
    // Every request has reached the coalescer, starting the call or joining it, while the
    // call is held; then DeepSeek answers.
    await waitFor(() => loads() - loadsBefore >= 200, { what: 'all 200 requests to reach the coalescer' });
    expect(upstream.received).toBe(1);
    upstream.release();
    const responses = await pending;
    expect(chatCallsMade()).toBe(before + 1);
    const ids = new Set(responses.map((r) => r.data!.completion.id));
    const contents = new Set(responses.map((r) => r.data!.completion.content));
    expect(ids.size).toBe(1);
    expect(contents.size).toBe(1);
    expect(responses.every((r) => r.errors === undefined)).toBe(true);
    // Every joiner made no call of its own, but an upstream call was made for it: not `cached`.
    expect(responses.filter((r) => r.data!.completion.cached)).toHaveLength(0);
    const status = await gql<{ upstream: { coalescing: { joinedInFlight: number } } }>(
      gateway,
      '{ upstream { coalescing { joinedInFlight } } }',
    );
    expect(status.data!.upstream.coalescing.joinedInFlight).toBeGreaterThanOrEqual(199);
  });
});

describe('deduplication inside one operation, over HTTP', () => {
  let gateway: Gateway;

  // One operation's loads are deduplicated before any upstream call, whatever its latency,
  // so these need no slow upstream.
  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('aliases of the same question in one operation make one call', async () => {
    const before = chatCalls(gateway);
    const res = await gql<Record<string, { id: string }>>(
      gateway,
      `{ a: completion(input: {prompt: "alias twin", thinking: false}) { id }
         b: completion(input: {prompt: "alias twin", thinking: false}) { id }
         c: completion(input: {messages: [{role: USER, content: "alias twin"}], thinking: false}) { id } }`,
    );
    expect(res.errors).toBeUndefined();
    expect(new Set([res.data!.a!.id, res.data!.b!.id, res.data!.c!.id]).size).toBe(1);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('a completions list with duplicates makes one call per distinct prompt', async () => {
    const before = chatCalls(gateway);
    const inputs = ['p', 'q', 'p', 'r', 'q', 'p'].map((prompt) => ({ prompt: `list ${prompt}`, thinking: false }));
    const res = await gql<{ completions: Array<{ id: string }> }>(
      gateway,
      'query ($inputs: [CompletionInput!]!) { completions(inputs: $inputs) { id } }',
      { inputs },
    );
    expect(res.data!.completions).toHaveLength(6);
    expect(chatCalls(gateway)).toBe(before + 3);
  });
});

describe('cache policies over HTTP', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('USE reads what an earlier query stored', async () => {
    const first = await ask(gateway, { prompt: 'policy USE' });
    const before = chatCalls(gateway);
    const second = await ask(gateway, { prompt: 'policy USE', cache: 'USE' });
    expect(second.data!.completion).toEqual({ ...first.data!.completion, cached: true });
    expect(chatCalls(gateway)).toBe(before);
  });

  it('BYPASS neither reads nor writes', async () => {
    await ask(gateway, { prompt: 'policy BYPASS' });
    const before = chatCalls(gateway);
    const bypassed = await ask(gateway, { prompt: 'policy BYPASS', cache: 'BYPASS' });
    expect(bypassed.data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(before + 1);

    const fresh = await ask(gateway, { prompt: 'policy BYPASS never stored', cache: 'BYPASS' });
    expect(fresh.data!.completion.cached).toBe(false);
    const after = await ask(gateway, { prompt: 'policy BYPASS never stored' });
    expect(after.data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(before + 3);
  });

  it('REFRESH skips the read and stores the new answer', async () => {
    const first = await ask(gateway, { prompt: 'policy REFRESH' });
    // createdAt has second resolution upstream (the simulator's clock, this process's):
    // wait for the next second, so a new answer is told apart from the stored one.
    await waitFor(() => Date.now() >= Date.parse(first.data!.completion.createdAt) + 1000, { what: 'the next second' });
    const refreshed = await ask(gateway, { prompt: 'policy REFRESH', cache: 'REFRESH' });
    expect(refreshed.data!.completion.cached).toBe(false);
    expect(refreshed.data!.completion.createdAt > first.data!.completion.createdAt).toBe(true);
    const read = await ask(gateway, { prompt: 'policy REFRESH' });
    expect(read.data!.completion).toMatchObject({ cached: true, createdAt: refreshed.data!.completion.createdAt });
  });
});

describe('cache bounds', () => {
  it('expires entries after CACHE_TTL_SECONDS', async () => {
    const gateway = await startTestGateway({ CACHE_TTL_SECONDS: '1' });
    try {
      await ask(gateway, { prompt: 'short-lived' });
      expect((await ask(gateway, { prompt: 'short-lived' })).data!.completion.cached).toBe(true);
      // Needed as is: an end-to-end TTL passes in real time (memory-cache.test.ts checks the
      // edge on a fake clock). Only a lower bound: a slower machine waits longer, never less.
      await sleep(1200);
      const before = chatCalls(gateway);
      expect((await ask(gateway, { prompt: 'short-lived' })).data!.completion.cached).toBe(false);
      expect(chatCalls(gateway)).toBe(before + 1);
    } finally {
      await gateway.close();
    }
  });

  it('evicts the least recently used entry beyond CACHE_MAX_ENTRIES', async () => {
    const gateway = await startTestGateway({ CACHE_MAX_ENTRIES: '2' });
    try {
      await ask(gateway, { prompt: 'one' });
      await ask(gateway, { prompt: 'two' });
      await ask(gateway, { prompt: 'three' });
      const status = await gql<{ upstream: { cache: { entries: number } } }>(gateway, '{ upstream { cache { entries } } }');
      expect(status.data!.upstream.cache.entries).toBe(2);
      expect((await ask(gateway, { prompt: 'three' })).data!.completion.cached).toBe(true);
      expect((await ask(gateway, { prompt: 'one' })).data!.completion.cached).toBe(false);
    } finally {
      await gateway.close();
    }
  });
});

describe('a shared Redis cache', () => {
  it('lets a second replica answer from the cache with no upstream call', async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', CACHE_NAMESPACE: `t${randomUUID().slice(0, 8)}` };
    const first = await startTestGateway(env);
    const second = await startTestGateway(env);
    try {
      const written = await ask(first, { prompt: 'shared between replicas' });
      expect(written.data!.completion.cached).toBe(false);
      // The answer goes out as soon as DeepSeek has answered; the write to Redis follows.
      await waitFor(
        async () => {
          const stats = await gql<{ upstream: { cache: { writes: number } } }>(first, '{ upstream { cache { writes } } }');
          return stats.data!.upstream.cache.writes >= 1;
        },
        { intervalMs: 20, what: 'the write to Redis' },
      );
      const read = await ask(second, { prompt: 'shared between replicas' });
      expect(read.data!.completion).toEqual({ ...written.data!.completion, cached: true });
      expect(chatCalls(second)).toBe(0);
      const status = await gql<{ upstream: { cache: { store: string } } }>(second, '{ upstream { cache { store } } }');
      expect(status.data!.upstream.cache.store).toBe('redis');
      // Leave the machine's Redis as we found it.
      const evicted = await gql(second, 'mutation ($id: ID!) { evictCompletion(id: $id) }', { id: read.data!.completion.id });
      expect(evicted.data).toEqual({ evictCompletion: true });
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('keeps answering while Redis is down and uses it again once it is back', async () => {
    const redis = await RedisServer.start();
    const gateway = await startTestGateway({ REDIS_URL: redis.url, CACHE_STORE_TIMEOUT_MS: '200' });
    try {
      expect(await becomesCached(gateway, 'before the outage')).toBe(true);

      await redis.stop();
      const during = await ask(gateway, { prompt: 'during the outage' });
      expect(during.errors).toBeUndefined();
      expect(during.data!.completion.cached).toBe(false);
      const status = await gql<{ upstream: { cache: { available: boolean; errors: number } } }>(
        gateway,
        '{ upstream { cache { available errors } } }',
      );
      expect(status.data!.upstream.cache.errors).toBeGreaterThan(0);

      await redis.start();
      expect(await becomesCached(gateway, 'after the outage')).toBe(true);
      expect(await redis.cli('DBSIZE')).not.toBe('0');
    } finally {
      await gateway.close();
      await redis.stop();
    }
  });
});

describe('a query and a stream for the same input share one upstream call, whichever starts first', () => {
  const KEY = 'sk-query-stream-test-key-01';
  const STREAM = `subscription ($input: CompletionInput!) { completionStream(input: $input) { completionId delta finishReason cached } }`;
  let simulator: Simulator;
  let upstream: HeldUpstream;
  let gateway: Gateway;

  // A fresh hold per test: the stand-in passes everything on once released.
  beforeEach(async () => {
    simulator = await startSimulator({ apiKeys: [KEY] });
    upstream = await startHeldUpstream(simulator.url);
    gateway = await startTestGateway({ DEEPSEEK_API_KEY: KEY, DEEPSEEK_BASE_URL: upstream.url });
  });
  afterEach(async () => {
    await gateway.close();
    await upstream.close();
    await simulator.close();
  });

  /** A multipart subscription; resolves with its chunks once it completes. */
  async function stream(input: Record<string, unknown>): Promise<Array<{ completionId: string; delta: string; cached: boolean }>> {
    const response = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'multipart/mixed;subscriptionSpec="1.0", application/json' },
      body: JSON.stringify({ query: STREAM, variables: { input } }),
    });
    const reader = readMultipart(response.body!);
    await reader.done;
    return payloads(reader).map((part) => (part.payload as { data: { completionStream: { completionId: string; delta: string; cached: boolean } } }).data.completionStream);
  }

  const streamStats = async () =>
    (await gql<{ upstream: { streams: { joinedCalls: number; joinedByQueries: number } } }>(gateway, '{ upstream { streams { joinedCalls joinedByQueries } } }')).data!
      .upstream.streams;

  it('a query that arrives while the stream runs waits for the stream’s answer', async () => {
    const input = { prompt: 'stream first, then a query', thinking: false };
    const streamed = stream(input);
    await waitFor(() => upstream.received === 1, { what: 'the stream to reach the upstream' });
    const asked = ask(gateway, input);
    await waitFor(async () => (await streamStats()).joinedByQueries === 1, { what: 'the query to join the stream' });
    upstream.release();
    const [chunks, answer] = await Promise.all([streamed, asked]);
    expect(answer.data!.completion).toMatchObject({ id: chunks[0]!.completionId, content: chunks.map((chunk) => chunk.delta).join(''), cached: false });
    expect(upstream.received).toBe(1);
  });

  it('a stream that starts while the query’s call runs is replayed that call’s answer', async () => {
    const input = { prompt: 'a query first, then a stream', thinking: false };
    const asked = ask(gateway, input);
    await waitFor(() => upstream.received === 1, { what: 'the query to reach the upstream' });
    const streamed = stream(input);
    await waitFor(async () => (await streamStats()).joinedCalls === 1, { what: 'the stream to join the call' });
    upstream.release();
    const [answer, chunks] = await Promise.all([asked, streamed]);
    expect(chunks.every((chunk) => !chunk.cached)).toBe(true);
    expect(chunks.map((chunk) => chunk.delta).join('')).toBe(answer.data!.completion.content);
    expect(upstream.received).toBe(1);
  });
});
