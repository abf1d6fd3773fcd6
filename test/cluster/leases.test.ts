import { connectRedisClient, type OwnedRedisClient } from '../../src/lib/redis-client';
import { ClusterLeases, type Claim } from '../../src/cluster';
import type { CompletionResult, StreamEvent } from '../../src/deepseek/types';
import { ErrorCode } from '../../src/errors';
import { createLogger, silentLogger } from '../../src/telemetry/logger';
import { completionResult } from '../cache/fixtures';
import { RedisServer } from '../cache/redis-server';
import { waitFor } from '../helpers/wait';

/**
 * Leases across replicas on a private redis-server: each `replica()` is what one gateway
 * process builds (two connections of its own), so several in one test behave as several
 * replicas sharing one Redis.
 */
describe('cluster leases (one call per question across replicas)', () => {
  let redis: RedisServer;
  const clients: OwnedRedisClient[] = [];
  const stored = new Map<string, CompletionResult>();

  async function replica(options: { leaseMs?: number; waitMaxMs?: number } = {}): Promise<{ leases: ClusterLeases; close(): Promise<void> }> {
    const commands = connectRedisClient({ url: redis.url, logger: silentLogger(), name: 'test' });
    const subscriber = connectRedisClient({ url: redis.url, logger: silentLogger(), name: 'test' });
    const reader = connectRedisClient({ url: redis.url, logger: silentLogger(), name: 'test' });
    clients.push(commands, subscriber, reader);
    await Promise.all([commands.ready, subscriber.ready, reader.ready]);
    const leases = new ClusterLeases({
      client: commands.client,
      subscriber: subscriber.client,
      reader: reader.client,
      namespace: 'test',
      leaseMs: options.leaseMs ?? 1_000,
      timeoutMs: 200,
      waitMaxMs: options.waitMaxMs ?? 10_000,
      readCache: async (key) => stored.get(key),
      logger: process.env.DEBUG_LEASES ? createLogger('debug') : silentLogger(),
    });
    return { leases, close: async () => void (await Promise.all([commands.close(), subscriber.close(), reader.close()])) };
  }

  const signal = (): AbortSignal => new AbortController().signal;
  const use = { signal: signal(), readCache: true };

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    stored.clear();
    await redis.start().catch(() => undefined);
    await redis.cli('FLUSHALL');
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('the first replica holds the lease; the others wait and get its answer, without a call of their own', async () => {
    const [a, b, c] = await Promise.all([replica(), replica(), replica()]);
    const owner = await a.leases.claim('k1', use);
    expect(owner.kind).toBe('owner');
    const waiting = [b.leases.claim('k1', use), c.leases.claim('k1', use)];
    await waitFor(async () => (await redis.cli('PUBSUB', 'NUMSUB', 'test:answer:k1')).endsWith('2'), { what: 'both waiters to listen' });
    const answer = completionResult('the one answer');
    if (owner.kind === 'owner') owner.finish({ result: answer });
    const claims = await Promise.all(waiting);
    expect(claims).toEqual([
      { kind: 'remote', result: answer },
      { kind: 'remote', result: answer },
    ]);
    expect(b.leases.stats()).toMatchObject({ mode: 'redis', remoteJoins: 1, leasesTaken: 0 });
    expect(a.leases.stats()).toMatchObject({ leasesTaken: 1, remoteJoins: 0 });
    // The lease is released once the answer is out.
    await waitFor(async () => (await redis.cli('EXISTS', 'test:lease:k1')) === '0');
  });

  it('a waiter that arrives once the answer is stored takes it from the cache (the source of truth)', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const owner = await a.leases.claim('k2', use);
    stored.set('k2', completionResult('stored meanwhile'));
    const claim = await b.leases.claim('k2', use);
    expect(claim).toMatchObject({ kind: 'remote', result: { content: 'stored meanwhile' } });
    // REFRESH and BYPASS never take a stored answer: they wait for the running call.
    const refresh = b.leases.claim('k2', { signal: signal(), readCache: false });
    await waitFor(async () => (await redis.cli('PUBSUB', 'NUMSUB', 'test:answer:k2')).endsWith('1'));
    if (owner.kind === 'owner') owner.finish({ result: completionResult('fresh') });
    expect(await refresh).toMatchObject({ kind: 'remote', result: { content: 'fresh' } });
  });

  it('when the holder\'s call fails, a waiter takes the call over at once', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const owner = await a.leases.claim('k3', use);
    const waiting = b.leases.claim('k3', use);
    await waitFor(async () => (await redis.cli('PUBSUB', 'NUMSUB', 'test:answer:k3')).endsWith('1'));
    if (owner.kind === 'owner') owner.finish({ error: true });
    const claim = await waiting;
    expect(claim).toMatchObject({ kind: 'owner', takeover: true });
    expect(b.leases.stats()).toMatchObject({ takeovers: 1, leasesTaken: 1 });
  });

  it('when the holder dies (its renewals stop), a waiter takes over within the lease time', async () => {
    const [a, b] = await Promise.all([replica({ leaseMs: 600 }), replica({ leaseMs: 600 })]);
    const owner = await a.leases.claim('k4', use);
    expect(owner.kind).toBe('owner');
    const deadHolder = await redis.cli('GET', 'test:lease:k4');
    const waiting = b.leases.claim('k4', use);
    await a.close(); // the holder's connections go: no renewal, no answer
    const claim: Claim = await waiting;
    expect(claim).toMatchObject({ kind: 'owner', takeover: true });
    expect(b.leases.stats()).toMatchObject({ takeovers: 1, waitTimeouts: 0 });
    // The waiter holds a lease of its own now, bounded by the lease time like any other.
    expect(await redis.cli('GET', 'test:lease:k4')).not.toBe(deadHolder);
    expect(Number(await redis.cli('PTTL', 'test:lease:k4'))).toBeGreaterThan(0);
    expect(Number(await redis.cli('PTTL', 'test:lease:k4'))).toBeLessThanOrEqual(600);
  });

  it('a waiter leaves when its signal aborts, and never waits past its deadline', async () => {
    const [a, b] = await Promise.all([replica(), replica({ waitMaxMs: 700 })]);
    await a.leases.claim('k5', use); // held, never finished (renewed while a lives)
    const controller = new AbortController();
    const leaving = b.leases.claim('k5', { signal: controller.signal, readCache: true });
    controller.abort(new Error('caller left'));
    await expect(leaving).rejects.toThrow('caller left');
    await expect(b.leases.claim('k5', use)).rejects.toMatchObject({ code: ErrorCode.UPSTREAM_TIMEOUT });
    expect(b.leases.stats().waitTimeouts).toBe(1);
  });

  it('a stream: the holder mirrors it; another replica follows it from the first chunk, then live, to the end', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const owner = await a.leases.claimStream('s1', use);
    if (owner.kind !== 'owner') throw new Error(`expected to own the stream, got ${owner.kind}`);
    owner.mirror({ type: 'delta', content: 'one ', reasoningContent: '' });
    owner.mirror({ type: 'delta', content: 'two ', reasoningContent: 'why' });
    const claim = await b.leases.claimStream('s1', use);
    if (claim.kind !== 'follow') throw new Error(`expected to follow, got ${claim.kind}`);
    const seen: StreamEvent[] = [];
    const reading = (async () => {
      for await (const event of claim.events) seen.push(event);
    })();
    await waitFor(() => seen.length === 2, { what: 'the replay of what was streamed' });
    expect(await a.leases.hasFollowers('s1')).toBe(true);
    owner.mirror({ type: 'delta', content: 'three', reasoningContent: '' });
    const result = completionResult('one two three');
    owner.finish({ result });
    await reading;
    expect(seen).toEqual([
      { type: 'delta', content: 'one ', reasoningContent: '' },
      { type: 'delta', content: 'two ', reasoningContent: 'why' },
      { type: 'delta', content: 'three', reasoningContent: '' },
      { type: 'finish', result },
    ]);
    // The follower left when the stream ended.
    await waitFor(async () => !(await a.leases.hasFollowers('s1')));
    expect(b.leases.stats().remoteStreams).toBe(1);
  });

  it('a stream whose producer dies fails its followers, typed and retryable, once its lease is gone', async () => {
    const [a, b] = await Promise.all([replica({ leaseMs: 600 }), replica({ leaseMs: 600 })]);
    const owner = await a.leases.claimStream('s2', use);
    if (owner.kind !== 'owner') throw new Error('expected to own the stream');
    owner.mirror({ type: 'delta', content: 'partial', reasoningContent: '' });
    const claim = await b.leases.claimStream('s2', use);
    if (claim.kind !== 'follow') throw new Error('expected to follow');
    await a.close();
    const seen: StreamEvent[] = [];
    const failure = await (async () => {
      for await (const event of claim.events) seen.push(event);
    })().catch((error: unknown) => error);
    expect(seen).toEqual([{ type: 'delta', content: 'partial', reasoningContent: '' }]);
    expect(failure).toMatchObject({ code: ErrorCode.UPSTREAM_UNAVAILABLE });
  });

  it('with Redis gone, every replica calls on its own (fail open) and says so; leases resume when it is back', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    await redis.stop();
    expect(await a.leases.claim('k6', use)).toEqual({ kind: 'local' });
    expect(await b.leases.claim('k6', use)).toEqual({ kind: 'local' });
    expect(a.leases.stats()).toMatchObject({ mode: 'degraded', localFallbacks: 1 });
    await redis.start();
    await waitFor(async () => (await a.leases.claim(`k7-${Date.now()}`, use)).kind === 'owner', { intervalMs: 200, what: 'leases in Redis again' });
    expect(a.leases.stats().mode).toBe('redis');
  });
});
