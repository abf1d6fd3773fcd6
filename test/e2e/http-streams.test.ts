import { ApolloClient, HttpLink, InMemoryCache, gql as apolloGql, type FetchResult } from '@apollo/client/core/core.cjs';
import { createClient as createSseClient } from 'graphql-sse';
import type { Gateway } from '../../src/app';
import { chatCalls, gql, startTestGateway } from '../helpers/gateway';
import { payloads, readMultipart, type MultipartReader } from '../helpers/multipart';
import { waitFor } from '../helpers/wait';

/**
 * Subscriptions over HTTP on /graphql itself: Apollo's multipart protocol (driven with
 * Apollo Client's plain HttpLink, and read raw for its framing) and GraphQL over SSE
 * (driven with graphql-sse's client), with the CSRF rule every browser-reachable request
 * keeps.
 */

const MULTIPART_ACCEPT = 'multipart/mixed;subscriptionSpec="1.0", application/json';

const STREAM = `subscription Stream($input: CompletionInput!) {
  completionStream(input: $input) {
    completionId index delta finishReason cached
    completion { id content finishReason cached usage { completionTokens } }
  }
}`;

interface Chunk {
  completionId: string;
  index: number;
  delta: string;
  finishReason: string | null;
  cached: boolean;
  completion: { id: string; content: string; finishReason: string; cached: boolean; usage: { completionTokens: number } } | null;
}

function fimCalls(gateway: Gateway): number {
  return gateway.simulator?.counters.byPath['/beta/completions'] ?? 0;
}

/** Every result of an Apollo Client subscription, until it completes or fails. */
function collect<T>(observable: { subscribe(observer: { next(value: T): void; error(error: unknown): void; complete(): void }): unknown }): Promise<T[]> {
  const results: T[] = [];
  return new Promise((resolve, reject) => {
    observable.subscribe({ next: (value) => results.push(value), error: reject, complete: () => resolve(results) });
  });
}

describe('subscriptions over HTTP on /graphql', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway({ SIMULATOR_TOKEN_DELAY_MS: '1', STREAM_HEARTBEAT_MS: '20' });
  });
  afterAll(async () => {
    await gateway.close();
  });
  beforeEach(() => {
    gateway.simulator!.faults.clear();
  });

  /** POSTs a subscription to /graphql asking for a multipart stream; the raw response. */
  const postMultipart = (query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: MULTIPART_ACCEPT, ...headers },
      body: JSON.stringify({ query, variables }),
      signal,
    });

  describe("Apollo's multipart protocol, with Apollo Client's plain HttpLink", () => {
    const client = (): ApolloClient<unknown> => new ApolloClient({ link: new HttpLink({ uri: gateway.graphqlUrl }), cache: new InMemoryCache() });

    it('streams a completion with no WebSocket link, and the client cache holds the whole Completion, not one merged chunk', async () => {
      const apollo = client();
      const input = { prompt: 'stream me through an HttpLink', thinking: false };
      const before = chatCalls(gateway);
      const results = await collect<FetchResult<{ completionStream: Chunk }>>(apollo.subscribe({ query: apolloGql(STREAM), variables: { input } }));

      expect(results.every((result) => result.errors === undefined)).toBe(true);
      const chunks = results.map((result) => result.data!.completionStream);
      expect(chunks.length).toBeGreaterThan(3);
      expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, i) => i));
      const last = chunks.at(-1)!;
      expect(last.finishReason).toBe('STOP');
      // Only the last chunk carries the completion, and it is the one the query returns.
      expect(chunks.slice(0, -1).every((chunk) => chunk.completion === null)).toBe(true);
      expect(last.completion).toMatchObject({ id: last.completionId, content: chunks.map((chunk) => chunk.delta).join(''), finishReason: 'STOP', cached: false });
      expect(chatCalls(gateway)).toBe(before + 1);

      const cache = apollo.cache.extract() as Record<string, Record<string, unknown>>;
      expect(cache[`Completion:${last.completionId}`]).toMatchObject({ content: last.completion!.content });
      // A chunk has no id, so the cache normalises none of them into an entry of its own.
      expect(Object.keys(cache).filter((key) => key.startsWith('CompletionChunk'))).toEqual([]);

      const query = await gql<{ completion: { content: string; cached: boolean } }>(
        gateway,
        'query ($input: CompletionInput!) { completion(input: $input) { content cached } }',
        { input },
      );
      expect(query.data!.completion).toEqual({ content: last.completion!.content, cached: true });
    });

    it('streams a fill-in-the-middle completion (fimCompletionStream) with the text the fimCompletion query returns', async () => {
      const apollo = client();
      const input = { prompt: 'def add(a, b):\n    return', suffix: '\n\nprint(add(1, 2))' };
      const before = fimCalls(gateway);
      const results = await collect<FetchResult<{ fimCompletionStream: Chunk }>>(
        apollo.subscribe({
          query: apolloGql(`subscription ($input: FimInput!) { fimCompletionStream(input: $input) { completionId delta finishReason cached completion { id content } } }`),
          variables: { input },
        }),
      );
      const chunks = results.map((result) => result.data!.fimCompletionStream);
      const text = chunks.map((chunk) => chunk.delta).join('');
      expect(chunks.at(-1)!.completion).toEqual({ __typename: 'Completion', id: chunks[0]!.completionId, content: text });
      expect(fimCalls(gateway)).toBe(before + 1);

      const query = await gql<{ fimCompletion: { id: string; content: string; cached: boolean } }>(
        gateway,
        'query ($input: FimInput!) { fimCompletion(input: $input) { id content cached } }',
        { input },
      );
      expect(query.data!.fimCompletion).toEqual({ id: chunks[0]!.completionId, content: text, cached: true });
      expect(fimCalls(gateway)).toBe(before + 1);
    });

    it('delivers a refused input as a typed GraphQL error, with no upstream call', async () => {
      const before = chatCalls(gateway);
      const results = await collect<FetchResult<{ completionStream: Chunk }>>(
        client().subscribe({ query: apolloGql(STREAM), variables: { input: { prompt: '   ' } }, errorPolicy: 'all' }),
      );
      expect(results).toHaveLength(1);
      expect(results[0]!.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.prompt' });
      expect(chatCalls(gateway)).toBe(before);
    });
  });

  describe('the multipart response itself', () => {
    it('frames each event as a JSON part under boundary "graphql", ends with the closing delimiter, and the last part carries extensions.cost', async () => {
      const input = { prompt: 'multipart framing', thinking: false };
      const response = await postMultipart(STREAM, { input });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('multipart/mixed;boundary="graphql";subscriptionSpec="1.0"');
      const reader = readMultipart(response.body!);
      await reader.done;
      expect(reader.closed).toBe(true);
      expect(reader.parts.every((part) => part.headers['content-type'] === 'application/json')).toBe(true);

      const events = payloads(reader).map((part) => part.payload as { data: { completionStream: Chunk }; extensions?: { cost?: Record<string, number> } });
      expect(events.length).toBeGreaterThan(3);
      // Only the last event carries the cost: one upstream call, started by this stream.
      expect(events.slice(0, -1).every((event) => event.extensions === undefined)).toBe(true);
      expect(events.at(-1)!.extensions!.cost).toMatchObject({ upstreamCalls: 1, cacheHits: 0 });
      expect(events.at(-1)!.extensions!.cost!.estimatedCostUsd).toBeGreaterThan(0);

      // The same stream again is a cached replay: no upstream call, nothing spent.
      const replay = readMultipart((await postMultipart(STREAM, { input })).body!);
      await replay.done;
      const replayed = payloads(replay).map((part) => part.payload as { data: { completionStream: Chunk }; extensions?: { cost?: Record<string, number> } });
      expect(replayed.every((event) => event.data.completionStream.cached)).toBe(true);
      expect(replayed.at(-1)!.extensions!.cost).toMatchObject({ upstreamCalls: 0, cacheHits: 1, estimatedCostUsd: 0 });
    });

    it('sends heartbeat parts while the upstream is silent, and a client that goes away ends the upstream call', async () => {
      gateway.simulator!.faults.inject({ kind: 'hang' }, { path: '/chat/completions' });
      const abort = new AbortController();
      const response = await postMultipart(STREAM, { input: { prompt: 'a silent upstream', thinking: false } }, {}, abort.signal);
      const reader = readMultipart(response.body!);
      reader.done.catch(() => undefined);
      await waitFor(() => reader.parts.length >= 3);
      expect(reader.parts.every((part) => Object.keys(part.body).length === 0)).toBe(true);
      await waitFor(() => gateway.simulator!.counters.inFlight === 1);

      abort.abort();
      await waitFor(() => gateway.simulator!.counters.inFlight === 0);
      await waitFor(async () => {
        const status = await gql<{ upstream: { streams: { openSubscriptions: number; abandoned: number } } }>(gateway, '{ upstream { streams { openSubscriptions abandoned } } }');
        return status.data!.upstream.streams.openSubscriptions === 0;
      });
    });

    it('answers a request refused before it runs as JSON with its HTTP status, as Apollo does', async () => {
      const invalid = await postMultipart('subscription { nope }', {});
      expect(invalid.status).toBe(400);
      expect(invalid.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await invalid.json()).toMatchObject({ errors: [{ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] });

      const malformed = await fetch(gateway.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: MULTIPART_ACCEPT },
        body: JSON.stringify({ query: 'subscription { completionStream(input: {prompt: "x"}) { delta } }', variables: [1] }),
      });
      expect(malformed.status).toBe(400);
      expect(await malformed.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/variables and extensions must be JSON objects/) }] });
    });

    it('answers a query that asks for a multipart stream as JSON (queries are Apollo’s, whatever they accept)', async () => {
      const response = await postMultipart('{ upstream { mode } }', {});
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toMatchObject({ data: { upstream: { mode: 'SIMULATOR' } } });
    });
  });

  describe('GraphQL over SSE on /graphql', () => {
    it("streams through graphql-sse's client pointed at /graphql, in distinct connections mode", async () => {
      const client = createSseClient({ url: gateway.graphqlUrl, retryAttempts: 0 });
      try {
        const chunks: Chunk[] = [];
        let last: { extensions?: { cost?: Record<string, number> } } | undefined;
        for await (const result of client.iterate<{ completionStream: Chunk }>({ query: STREAM, variables: { input: { prompt: 'sse on /graphql', thinking: false } } })) {
          expect(result.errors).toBeUndefined();
          chunks.push(result.data!.completionStream);
          last = result as typeof last;
        }
        expect(chunks.at(-1)!.completion!.content).toBe(chunks.map((chunk) => chunk.delta).join(''));
        expect(last!.extensions!.cost).toMatchObject({ upstreamCalls: 1 });
      } finally {
        client.dispose();
      }
    });

    it('answers a query that accepts an event stream as JSON', async () => {
      const response = await fetch(gateway.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream, application/json' },
        body: JSON.stringify({ query: '{ upstream { mode } }' }),
      });
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toMatchObject({ data: { upstream: { mode: 'SIMULATOR' } } });
    });
  });

  describe('CSRF prevention on every streaming request a browser could send without a preflight', () => {
    const subscription = 'subscription { completionStream(input: {prompt: "csrf", thinking: false}) { delta } }';

    it.each([
      ['multipart', MULTIPART_ACCEPT],
      ['SSE', 'text/event-stream'],
    ])('refuses a %s subscription posted as text/plain or sent as a simple GET, before any upstream call', async (_name, accept) => {
      const before = gateway.simulator!.counters.total;
      const form = await fetch(gateway.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', accept },
        body: JSON.stringify({ query: subscription }),
      });
      expect(form.status).toBe(400);
      expect(await form.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/Cross-Site Request Forgery/), extensions: { code: 'BAD_REQUEST' } }] });

      const simpleGet = await fetch(`${gateway.graphqlUrl}?query=${encodeURIComponent(subscription)}`, { headers: { accept } });
      expect(simpleGet.status).toBe(400);
      expect(await simpleGet.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/Cross-Site Request Forgery/) }] });
      expect(gateway.simulator!.counters.total).toBe(before);
    });

    it('streams a GET that carries a header only a preflighted request can have', async () => {
      const response = await fetch(`${gateway.graphqlUrl}?query=${encodeURIComponent(STREAM)}&variables=${encodeURIComponent(JSON.stringify({ input: { prompt: 'preflighted get', thinking: false } }))}`, {
        headers: { accept: MULTIPART_ACCEPT, 'apollo-require-preflight': 'true' },
      });
      expect(response.status).toBe(200);
      const reader: MultipartReader = readMultipart(response.body!);
      await reader.done;
      expect(payloads(reader).at(-1)!.payload).toMatchObject({ data: { completionStream: { finishReason: 'STOP' } } });
    });
  });
});

describe('MAX_STREAMS over HTTP', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway({ MAX_STREAMS: '1', STREAM_HEARTBEAT_MS: '20' });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('refuses a subscription past the replica cap with OVERLOADED in the stream, and serves again once one ends', async () => {
    gateway.simulator!.faults.inject({ kind: 'hang' }, { path: '/chat/completions' });
    const abort = new AbortController();
    const post = (prompt: string, signal?: AbortSignal) =>
      fetch(gateway.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: MULTIPART_ACCEPT },
        body: JSON.stringify({ query: STREAM, variables: { input: { prompt, thinking: false } } }),
        signal,
      });
    const first = readMultipart((await post('the one stream', abort.signal)).body!);
    first.done.catch(() => undefined);
    await waitFor(() => gateway.simulator!.counters.inFlight === 1);

    const second = readMultipart((await post('one too many')).body!);
    await second.done;
    const [refused] = payloads(second).map((part) => part.payload as { errors: Array<{ extensions: Record<string, unknown> }> });
    expect(refused!.errors[0]!.extensions).toMatchObject({ code: 'OVERLOADED', limit: 'MAX_STREAMS' });

    abort.abort();
    await waitFor(() => gateway.simulator!.counters.inFlight === 0);
    const third = readMultipart((await post('after the first ended')).body!);
    await third.done;
    expect(payloads(third).at(-1)!.payload).toMatchObject({ data: { completionStream: { finishReason: 'STOP' } } });
  });
});
