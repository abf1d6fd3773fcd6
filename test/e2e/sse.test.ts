import { createClient, type Client } from 'graphql-sse';
import type { Gateway } from '../../src/app';
import { chatCalls, COMPLETION_FIELDS, gql, startTestGateway } from '../helpers/gateway';
import { waitFor } from '../helpers/wait';

const STREAM = `subscription ($input: CompletionInput!) {
  completionStream(input: $input) { id index delta reasoningDelta finishReason cached }
}`;

interface Chunk {
  id: string;
  index: number;
  delta: string;
  reasoningDelta: string | null;
  finishReason: string | null;
  cached: boolean;
}

describe('completionStream over GraphQL over SSE (/graphql/stream)', () => {
  let gateway: Gateway;
  let client: Client;

  beforeAll(async () => {
    gateway = await startTestGateway({ SIMULATOR_TOKEN_DELAY_MS: '2' });
    client = createClient({ url: `${gateway.url}/graphql/stream`, retryAttempts: 0 });
  });
  afterAll(async () => {
    client.dispose();
    await gateway.close();
  });

  async function collect(input: Record<string, unknown>): Promise<{ chunks: Chunk[]; errors?: Array<{ extensions?: Record<string, unknown> }> }> {
    const chunks: Chunk[] = [];
    let errors: Array<{ extensions?: Record<string, unknown> }> | undefined;
    for await (const result of client.iterate<{ completionStream: Chunk }>({ query: STREAM, variables: { input } })) {
      if (result.errors) errors = result.errors as unknown as typeof errors;
      else chunks.push(result.data!.completionStream);
    }
    return { chunks, errors };
  }

  it('streams the same text the query returns, then a cached replay with no upstream call', async () => {
    const input = { prompt: 'stream me over SSE', thinking: false };
    const before = chatCalls(gateway);
    const streamed = await collect(input);
    expect(streamed.errors).toBeUndefined();
    expect(streamed.chunks.length).toBeGreaterThan(3);
    expect(streamed.chunks.at(-1)!.finishReason).toBe('STOP');
    expect(chatCalls(gateway)).toBe(before + 1);

    const query = await gql<{ completion: { id: string; content: string; cached: boolean } }>(
      gateway,
      `query ($input: CompletionInput!) { completion(input: $input) { ${COMPLETION_FIELDS} } }`,
      { input },
    );
    expect(query.data!.completion.cached).toBe(true);
    expect(streamed.chunks.map((c) => c.delta).join('')).toBe(query.data!.completion.content);
    expect(streamed.chunks[0]!.id).toBe(query.data!.completion.id);

    const replay = await collect(input);
    expect(replay.chunks.every((c) => c.cached)).toBe(true);
    expect(replay.chunks.map((c) => c.delta).join('')).toBe(query.data!.completion.content);
    expect(chatCalls(gateway)).toBe(before + 1);
  });

  it('answers bad input and non-subscriptions with typed errors', async () => {
    const bad = await collect({ prompt: '   ' });
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.prompt' });

    // Request-level errors answer like Apollo over HTTP: a 400 with a JSON body, no stream.
    const post = (query: string) =>
      fetch(`${gateway.url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query }),
      });
    const queryOverSse = await post('{ upstream { mode } }');
    expect(queryOverSse.status).toBe(400);
    expect(await queryOverSse.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
    const invalid = await post('subscription { nope }');
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ errors: [{ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] });
  });

  it('maps an upstream failure before the first token to a typed error', async () => {
    gateway.simulator!.faults.inject({ kind: 'status', status: 503 }, { count: 3 });
    const failed = await collect({ prompt: 'sse upstream failure', thinking: false, cache: 'BYPASS' });
    expect(failed.chunks).toHaveLength(0);
    expect(failed.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', upstreamStatus: 503 });
  });

  it('aborts the upstream stream when the only SSE client disconnects', async () => {
    const simulator = gateway.simulator!;
    // Left alone, the stream would run ~12 s (about 24 tokens), far past the wait below.
    simulator.setOptions({ tokenDelayMs: 500 });
    try {
      const controller = new AbortController();
      const response = await fetch(`${gateway.url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: STREAM, variables: { input: { prompt: 'leave me early', thinking: false, cache: 'BYPASS' } } }),
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      // The first bytes may be graphql-sse's keep-alive comment; wait for a chunk.
      let received = '';
      while (!received.includes('event: next')) received += new TextDecoder().decode((await reader.read()).value);
      expect(simulator.counters.inFlight).toBe(1);
      const abandoned = gateway.services.streams.stats().abandoned;
      controller.abort();
      // Released at once, shown without a clock: the hub counts the stream abandoned (it
      // aborted the upstream because its last subscriber left), and the simulator sees the
      // request end within waitFor's 5 s, a deadline no loaded machine reaches, yet well
      // before the ~11 s the stream would still run if the abort did not reach it.
      await waitFor(() => simulator.counters.inFlight === 0, { timeoutMs: 5_000, what: 'the upstream request to end' });
      expect(simulator.counters.inFlight).toBe(0);
      expect(gateway.services.streams.stats().abandoned).toBe(abandoned + 1);
    } finally {
      simulator.setOptions({ tokenDelayMs: 2 });
    }
  });
});

describe('shutdown with an open SSE stream', () => {
  it('ends the stream and closes the gateway', async () => {
    // About 24 tokens a second apart: a close that waited for the stream would take ~24 s.
    const gateway = await startTestGateway({ SIMULATOR_TOKEN_DELAY_MS: '1000', SHUTDOWN_GRACE_MS: '100' });
    const response = await fetch(`${gateway.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: STREAM, variables: { input: { prompt: 'a long one', thinking: false } } }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    await waitFor(() => gateway.services.streams.stats().activeStreams === 1, { what: 'the upstream stream to open' });
    const started = Date.now();
    await gateway.close();
    // Generous: close takes milliseconds, no loaded machine makes it 5 s, and one that
    // waited for the stream to finish would take ~24 s.
    expect(Date.now() - started).toBeLessThan(5000);
    // The response is over: it ended, or the connection was cut by the drain.
    const outcome = await (async () => {
      try {
        for (;;) if ((await reader.read()).done) return 'ended';
      } catch {
        return 'cut';
      }
    })();
    expect(['ended', 'cut']).toContain(outcome);
    expect(gateway.services.streams.stats().activeStreams).toBe(0);
  });
});
