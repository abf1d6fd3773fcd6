import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { once } from 'node:events';
import { startSimulator, type Simulator } from '../../src/simulator';
import { RedisServer } from '../cache/redis-server';
import { startService, waitForUrl } from '../helpers/service-process';
import { waitFor } from '../helpers/wait';

jest.setTimeout(90_000);

const KEY = 'sk-cluster-test-0123456789abcdef';

interface Answer {
  status: number;
  body: { data?: { completion?: { id: string; content: string; cached: boolean } } | null; errors?: unknown[]; extensions?: { cost?: Record<string, number> } };
}

async function ask(url: string, prompt: string): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ completion(input: {prompt: ${JSON.stringify(prompt)}, thinking: false, maxTokens: 30}) { id content cached } }` }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

interface ClusterFigures {
  mode: string;
  leasesTaken: number;
  takeovers: number;
  remoteJoins: number;
}

async function clusterFigures(url: string): Promise<ClusterFigures> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ upstream { coalescing { cluster { mode leasesTaken takeovers remoteJoins } } } }' }),
  });
  const body = (await response.json()) as { data: { upstream: { coalescing: { cluster: ClusterFigures } } } };
  return body.data.upstream.coalescing.cluster;
}

/** Upstream streams a replica's hub aborted because nobody read them any more. */
async function abandoned(url: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ upstream { streams { abandoned } } }' }),
  });
  return ((await response.json()) as { data: { upstream: { streams: { abandoned: number } } } }).data.upstream.streams.abandoned;
}

/**
 * Three gateway processes, one Redis, one upstream (an in-process simulator, so its
 * request counter is the truth about upstream calls): the replicas act as one service.
 */
describe('many replicas act as one (three processes, one Redis, one upstream)', () => {
  let redis: RedisServer;
  let simulator: Simulator;
  const children: ChildProcessWithoutNullStreams[] = [];
  let urls: string[] = [];

  const chatCalls = (): number => simulator.counters.byPath['/chat/completions'] ?? 0;

  beforeAll(async () => {
    redis = await RedisServer.start();
    simulator = await startSimulator({ host: '127.0.0.1', port: 0, apiKeys: [KEY], latencyMs: 0, tokenDelayMs: 0 });
    const env = {
      DEEPSEEK_API_KEY: KEY,
      DEEPSEEK_BASE_URL: simulator.url,
      REDIS_URL: redis.url,
      CLUSTER_LEASE_MS: '1000',
      // Three processes start at once: no warm-up (its own test is test/e2e/warmup.test.ts).
      WARMUP_OPERATIONS: '0',
      // A cold process under a 300-request burst must not time out its lease commands and
      // call on its own (the fail-open path, tested in test/cluster): these tests count calls.
      CLUSTER_REDIS_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'info',
    };
    for (let i = 0; i < 3; i += 1) children.push(startService(env));
    urls = (await Promise.all(children.map((child) => waitForUrl(child)))).map((started) => started.url);
    await waitFor(async () => (await Promise.all(urls.map(clusterFigures))).every((figures) => figures.mode === 'REDIS'), {
      what: 'every replica to lease through Redis',
      intervalMs: 100,
    });
    // Warm the processes up: cache hits after one call, so one call in all.
    await Promise.all(urls.flatMap((url) => Array.from({ length: 20 }, () => ask(url, 'warm-up'))));
  });

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
    await simulator.close();
    await redis.stop();
  });

  it('300 identical concurrent requests spread over the three replicas make exactly one upstream call', async () => {
    simulator.setOptions({ latencyMs: 1_000 });
    const before = chatCalls();
    const figuresBefore = await Promise.all(urls.map(clusterFigures));
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => ask(urls[i % 3], 'one question for the whole cluster')));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(chatCalls() - before).toBe(1);
    const contents = new Set(answers.map((answer) => answer.body.data?.completion?.content));
    expect(contents.size).toBe(1);
    expect(new Set(answers.map((answer) => answer.body.data?.completion?.id)).size).toBe(1);
    // One replica made the call; each of the other two joined it remotely, once for all
    // of its own (coalesced locally) requests.
    const figures = await Promise.all(urls.map(clusterFigures));
    const delta = figures.map((f, i) => ({ leases: f.leasesTaken - figuresBefore[i].leasesTaken, remote: f.remoteJoins - figuresBefore[i].remoteJoins }));
    expect(delta.reduce((sum, d) => sum + d.leases, 0)).toBe(1);
    expect(delta.reduce((sum, d) => sum + d.remote, 0)).toBe(2);
    // The answer's cost says where it came from: a remote join costs this replica no call.
    const remoteReplica = delta.findIndex((d) => d.remote === 1);
    const costs = answers.filter((_, i) => i % 3 === remoteReplica).map((answer) => answer.body.extensions?.cost);
    expect(costs.some((cost) => cost?.joinedRemote === 1 && cost.upstreamCalls === 0 && cost.estimatedCostUsd === 0)).toBe(true);
    expect(costs.every((cost) => cost?.upstreamCalls === 0)).toBe(true);
  });

  /** A WebSocket subscription to one replica; `chunks` fills as they arrive. */
  function stream(url: string, prompt: string) {
    const chunks: Array<{ delta: string; finishReason: string | null; cached: boolean }> = [];
    let failure: unknown;
    const client: Client = createClient({ url: url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    const done = new Promise<void>((resolve) => {
      client.subscribe(
        { query: `subscription { completionStream(input: {prompt: ${JSON.stringify(prompt)}, thinking: false}) { delta finishReason cached } }` },
        {
          next: (event) => {
            if (event.errors) failure = event.errors;
            const chunk = (event.data as { completionStream?: (typeof chunks)[number] } | undefined)?.completionStream;
            if (chunk) chunks.push(chunk);
          },
          error: (error) => {
            failure = error;
            resolve();
          },
          complete: () => resolve(),
        },
      );
    });
    return { chunks, done, failure: () => failure, close: () => client.dispose(), text: () => chunks.map((c) => c.delta).join('') };
  }

  it('a stream started on one replica and joined on another delivers the same text, from one upstream stream', async () => {
    simulator.setOptions({ latencyMs: 0, tokenDelayMs: 40 });
    const before = chatCalls();
    const prompt = 'a stream the whole cluster shares';
    const first = stream(urls[0], prompt);
    await waitFor(() => first.chunks.length >= 3, { what: 'the first replica\'s stream to be under way' });
    const late = stream(urls[1], prompt);
    await Promise.all([first.done, late.done]);
    simulator.setOptions({ tokenDelayMs: 0 });
    expect(first.failure()).toBeUndefined();
    expect(late.failure()).toBeUndefined();
    expect(late.text()).toBe(first.text());
    expect(late.text().length).toBeGreaterThan(0);
    expect(late.chunks.at(-1)).toMatchObject({ finishReason: 'STOP', cached: false });
    expect(chatCalls() - before).toBe(1);
    const figures = (await Promise.all(urls.map((url) => fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ upstream { coalescing { cluster { remoteStreams } } } }' }),
    }).then((r) => r.json() as Promise<{ data: { upstream: { coalescing: { cluster: { remoteStreams: number } } } } }>))));
    expect(figures[1].data.upstream.coalescing.cluster.remoteStreams).toBeGreaterThanOrEqual(1);
    await Promise.all([first.close(), late.close()]);
  });

  it('the producing replica keeps its upstream stream while another replica still follows it, and stops it when nobody anywhere reads', async () => {
    simulator.setOptions({ latencyMs: 0, tokenDelayMs: 60 });
    const before = chatCalls();
    const prompt = 'a stream whose first subscriber leaves early';
    const first = stream(urls[0], prompt);
    await waitFor(() => first.chunks.length >= 2, { what: 'the stream to be under way' });
    const late = stream(urls[2], prompt);
    await waitFor(() => late.chunks.length >= 2, { what: 'the follower to receive chunks' });
    await first.close(); // the producer's own subscriber leaves: the follower still reads
    await late.done;
    expect(late.failure()).toBeUndefined();
    expect(late.chunks.at(-1)).toMatchObject({ finishReason: 'STOP' });
    expect(chatCalls() - before).toBe(1);

    // Now both leave mid-stream: the producer aborts its upstream stream (its hub counts it
    // as abandoned), and the upstream exchange ends.
    simulator.setOptions({ tokenDelayMs: 300 });
    const abandonedBefore = await abandoned(urls[0]);
    const again = stream(urls[0], `${prompt} (second)`);
    await waitFor(() => again.chunks.length >= 1);
    const follower = stream(urls[1], `${prompt} (second)`);
    await waitFor(() => follower.chunks.length >= 1);
    expect(simulator.counters.inFlight).toBe(1);
    await Promise.all([again.close(), follower.close()]);
    await waitFor(async () => (await abandoned(urls[0])) === abandonedBefore + 1, { what: 'the producer to abandon its upstream stream' });
    await waitFor(() => simulator.counters.inFlight === 0, { what: 'the upstream exchange to end' });
    expect(again.chunks.some((c) => c.finishReason !== null)).toBe(false);
    simulator.setOptions({ tokenDelayMs: 0 });
  });

  it('killing the lease holder mid-call still answers every request on the other replicas, with one more call at most', async () => {
    simulator.setOptions({ latencyMs: 3_000 });
    const before = chatCalls();
    const figuresBefore = await Promise.all(urls.map(clusterFigures));
    const prompt = 'a question whose first caller dies';
    const first = ask(urls[0], prompt).catch(() => undefined); // replica 0 takes the lease
    await waitFor(() => chatCalls() > before, { what: 'the holder\'s call to reach the upstream' });
    const holderFigures = await clusterFigures(urls[0]);
    expect(holderFigures.leasesTaken - figuresBefore[0].leasesTaken).toBe(1);
    const survivors = [urls[1], urls[2]];
    const waiting = Array.from({ length: 20 }, (_, i) => ask(survivors[i % 2], prompt));
    // Both survivors wait on the holder's lease (no call of their own yet).
    await waitFor(async () => (await redis.cli('PUBSUB', 'NUMSUB', `dsgw:answer:${(await redis.cli('KEYS', 'dsgw:lease:*')).split(':').slice(2).join(':')}`)).endsWith('2'), {
      what: 'both survivors to wait on the holder',
    });
    expect(chatCalls() - before).toBe(1);
    simulator.setOptions({ latencyMs: 0 });
    children[0].kill('SIGKILL');
    await once(children[0], 'exit');
    const answers = await Promise.all(waiting);
    await first;
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((answer) => answer.body.data?.completion?.content)).size).toBe(1);
    expect(chatCalls() - before).toBe(2);
    const after = await Promise.all(survivors.map(clusterFigures));
    expect(after.reduce((sum, f, i) => sum + f.takeovers - figuresBefore[i + 1].takeovers, 0)).toBe(1);
  });
});
