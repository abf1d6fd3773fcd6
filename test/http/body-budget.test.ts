import { connect, type Socket } from 'node:net';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Gateway } from '../../src/app';
import { ConfigError, testConfig } from '../../src/config';
import { BODY_BUDGET_MESSAGE } from '../../src/http/body-budget';
import { ByteBudget } from '../../src/lib/byte-budget';
import { startSimulator, type Simulator } from '../../src/simulator';
import { gql, startTestGateway, type GraphQLResponse } from '../helpers/gateway';
import { startHeldUpstream, type HeldUpstream } from '../helpers/held-upstream';
import { waitFor } from '../helpers/wait';

describe('ByteBudget', () => {
  it('takes what fits, refuses (and counts) what does not, and gives back', () => {
    const budget = new ByteBudget(100);
    expect(budget.take(60)).toBe(true);
    expect(budget.take(40)).toBe(true);
    expect(budget.take(1)).toBe(false);
    expect(budget).toMatchObject({ held: 100, refused: 1 });
    budget.give(60);
    expect(budget.take(50)).toBe(true);
    expect(budget).toMatchObject({ held: 90, refused: 1 });
  });

  it('with 0 bytes bounds nothing', () => {
    const budget = new ByteBudget(0);
    expect(budget.take(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(budget.refused).toBe(0);
  });

  it('is refused by the config when it could never admit a body the body limit allows', () => {
    expect(() => testConfig({ HTTP_BODY_LIMIT_BYTES: '65536', HTTP_MAX_BODY_BYTES_IN_FLIGHT: '65535' })).toThrow(ConfigError);
    expect(() => testConfig({ HTTP_BODY_LIMIT_BYTES: '65536', HTTP_MAX_BODY_BYTES_IN_FLIGHT: '0' })).not.toThrow();
    expect(testConfig({}).server.maxBodyBytesInFlight).toBe(32 * 1024 * 1024);
  });
});

describe('request bodies held at once (HTTP_MAX_BODY_BYTES_IN_FLIGHT)', () => {
  const KEY = 'sk-body-budget-test-key-01';
  // Room for two 40 KB bodies and a few small ones, not for a third large one.
  const BUDGET = 100_000;
  const QUERY = 'query Big($prompt: String!) { completion(input: { prompt: $prompt, thinking: false, cache: BYPASS }) { id } }';
  let simulator: Simulator;
  let upstream: HeldUpstream;
  let gateway: Gateway;
  let n = 0;
  const bigPrompt = (): string => `${(n += 1)} ${'x'.repeat(40_000)}`;

  /** A gateway with room for two 40 KB bodies in front of `upstreamUrl`. */
  const startBudgetGateway = (upstreamUrl: string): Promise<Gateway> =>
    startTestGateway({
      DEEPSEEK_API_KEY: KEY,
      DEEPSEEK_BASE_URL: upstreamUrl,
      HTTP_BODY_LIMIT_BYTES: '65536',
      HTTP_MAX_BODY_BYTES_IN_FLIGHT: String(BUDGET),
    });

  beforeAll(async () => {
    simulator = await startSimulator({ apiKeys: [KEY] });
    upstream = await startHeldUpstream(simulator.url);
    gateway = await startBudgetGateway(upstream.url);
  });
  afterAll(async () => {
    await gateway.close();
    await upstream.close();
    await simulator.close();
  });

  it('refuses a body that does not fit with a 503 OVERLOADED and Retry-After, admits small ones, and gives the bytes back when answers are sent', async () => {
    const held = [gql(gateway, QUERY, { prompt: bigPrompt() }), gql(gateway, QUERY, { prompt: bigPrompt() })];
    await waitFor(() => upstream.received === 2, { what: 'both large requests to reach the upstream' });
    const heldBytes = gateway.services.bodyBudget.held;
    expect(heldBytes).toBeGreaterThan(80_000);

    const refused = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY, variables: { prompt: bigPrompt() } }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = (await refused.json()) as GraphQLResponse;
    expect(body.errors).toEqual([{ message: BODY_BUDGET_MESSAGE, extensions: { code: 'OVERLOADED' } }]);
    // Refused before any GraphQL work: no third upstream call.
    expect(upstream.received).toBe(2);

    // A small body still fits beside the two large ones; a GET has none.
    expect((await gql(gateway, '{ __typename }')).data).toEqual({ __typename: 'Query' });

    expect(gateway.services.bodyBudget).toMatchObject({ held: heldBytes, refused: 1 });

    upstream.release();
    for (const answer of await Promise.all(held)) expect(answer.status).toBe(200);
    await waitFor(() => gateway.services.bodyBudget.held === 0, { what: 'every byte to be given back' });
    // Given back: two large bodies fit again.
    const again = await Promise.all([gql(gateway, QUERY, { prompt: bigPrompt() }), gql(gateway, QUERY, { prompt: bigPrompt() })]);
    expect(again.map((answer) => [answer.status, answer.errors])).toEqual([
      [200, undefined],
      [200, undefined],
    ]);
  });

  it('charges nothing for a body that is announced but has not arrived: a slow client cannot lock others out', async () => {
    const { port } = new URL(gateway.url);
    const slow: Socket[] = [];
    try {
      // Three clients each announce 60,000 bytes (180,000 in all, more than the budget) and send 10.
      for (let i = 0; i < 3; i += 1) {
        const socket = connect(Number(port), '127.0.0.1');
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.on('error', () => undefined);
        socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 60000\r\n\r\n{"query":`);
        slow.push(socket);
      }
      const answers = await Promise.all([gql(gateway, QUERY, { prompt: bigPrompt() }), gql(gateway, QUERY, { prompt: bigPrompt() })]);
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    } finally {
      for (const socket of slow) socket.destroy();
    }
  });

  it('gives back the bytes of a client that leaves before its answer', async () => {
    // A stand-in of its own that holds every call, so the requests are still waiting when their clients leave.
    const holding = await startHeldUpstream(simulator.url);
    const leaving = await startBudgetGateway(holding.url);
    try {
      const { port } = new URL(leaving.url);
      const leavers: Socket[] = [];
      for (let i = 0; i < 2; i += 1) {
        const body = JSON.stringify({ query: QUERY, variables: { prompt: bigPrompt() } });
        const socket = connect(Number(port), '127.0.0.1');
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.on('error', () => undefined);
        socket.write(`POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        leavers.push(socket);
      }
      await waitFor(() => holding.received === 2, { what: 'both requests to reach the upstream' });
      expect(leaving.services.bodyBudget.held).toBeGreaterThan(80_000);
      for (const socket of leavers) socket.destroy();
      await waitFor(() => leaving.services.bodyBudget.held === 0, { what: 'the leavers’ bytes to be given back' });
    } finally {
      holding.release();
      await leaving.close();
      await holding.close();
    }
  });

  it('counts a WebSocket subscription by its subscribe message, from subscribe to its end', async () => {
    const holding = await startHeldUpstream(simulator.url);
    const streaming = await startBudgetGateway(holding.url);
    const client = createClient({ url: streaming.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const STREAM = 'subscription ($p: String!) { completionStream(input: { prompt: $p, thinking: false, cache: BYPASS }) { delta } }';
    const subscribe = (prompt: string) => {
      const outcome: { errors?: unknown; done: boolean } = { done: false };
      const unsubscribe = client.subscribe(
        { query: STREAM, variables: { p: prompt } },
        {
          next: () => undefined,
          error: (errors) => {
            outcome.errors = errors;
            outcome.done = true;
          },
          complete: () => {
            outcome.done = true;
          },
        },
      );
      return { outcome, unsubscribe };
    };
    try {
      const first = subscribe(bigPrompt());
      const second = subscribe(bigPrompt());
      await waitFor(() => holding.received === 2, { what: 'both streams to reach the upstream' });
      const held = streaming.services.bodyBudget.held;
      expect(held).toBeGreaterThan(80_000);

      const third = subscribe(bigPrompt());
      await waitFor(() => third.outcome.done, { what: 'the third subscription to be refused' });
      expect(third.outcome.errors).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'OVERLOADED' }) })]);
      expect(holding.received).toBe(2);

      first.unsubscribe();
      await waitFor(() => streaming.services.bodyBudget.held < held, { what: 'the first stream’s bytes to be given back' });
      holding.release();
      await waitFor(() => second.outcome.done, { what: 'the second stream to end' });
      await waitFor(() => streaming.services.bodyBudget.held === 0, { what: 'every byte to be given back' });
    } finally {
      holding.release();
      await client.dispose();
      await streaming.close();
      await holding.close();
    }
  });
});
