import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { outcomeOf, postGraphQL, send } from '../http';
import { measure, type LoadResult } from '../load';
import { childEnv, startCommand } from '../proc';
import { originOf, simCalls, simCounters } from './support';
import type { Probe, ProbeRow } from './types';

/**
 * Requests that make the gateway spend on DeepSeek (or wait on a dependency) when it
 * should not: a cross-site page opening a paid stream, aliases that each call upstream,
 * and a cache store that hangs instead of failing.
 */

export const sseCrossSite: Probe = {
  name: 'sse-cross-site',
  ownGateway: false,
  timeoutMs: () => 20_000,
  async run(ctx): Promise<ProbeRow[]> {
    const gateway = await ctx.gateway();
    const query = 'subscription{completionStream(input:{prompt:"x",thinking:false}){delta}}';
    const url = `${originOf(gateway)}/graphql/stream?query=${encodeURIComponent(query)}`;
    const before = await simCounters(ctx.sim);
    // What a cross-site page can make a browser send without a preflight: a GET with these headers.
    const { value: answer, cost } = await ctx.observe(gateway, () =>
      send(url, { method: 'GET', headers: { accept: 'text/event-stream', origin: 'https://evil.example' }, timeoutMs: 10_000 }),
    );
    const calls = simCalls(await simCounters(ctx.sim), '/chat/completions') - simCalls(before, '/chat/completions');
    const events = (answer.body?.match(/^event: next$/gm) ?? []).length;
    return [
      {
        probe: this.name,
        attack: 'GET /graphql/stream?query=subscription{…}, Accept: text/event-stream, Origin: https://evil.example',
        outcome: `${outcomeOf(answer)}, ${events} next events`,
        cost,
        harm: `upstream call made: ${calls > 0 ? 'yes' : 'no'} (${calls} simulator chat requests)`,
        details: { status: answer.status, nextEvents: events, simulatorChatRequests: calls, body: answer.body?.slice(0, 500) },
      },
    ];
  },
};

export const modelsAliases: Probe = {
  name: 'models-aliases',
  ownGateway: false,
  timeoutMs: () => 15_000,
  async run(ctx): Promise<ProbeRow[]> {
    const n = ctx.limits.modelAliases;
    const gateway = await ctx.gateway();
    const query = `{ ${Array.from({ length: n }, (_, i) => `m${i}: models { id }`).join(' ')} }`;
    const before = await simCounters(ctx.sim);
    const { value: answer, cost } = await ctx.observe(gateway, () => postGraphQL(originOf(gateway), JSON.stringify({ query }), { timeoutMs: 10_000 }));
    const calls = simCalls(await simCounters(ctx.sim), '/models') - simCalls(before, '/models');
    return [
      {
        probe: this.name,
        attack: `one query with ${n} aliased models { id }`,
        outcome: outcomeOf(answer),
        cost,
        harm: `${calls} upstream GET /models calls`,
        details: { simulatorModelsRequests: calls },
      },
    ];
  },
};

/** A TCP port nothing listens on now (the kernel's pick for port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const HIT_QUERY = 'query { completion(input:{prompt:"probe redis", thinking:false}) { id cached } }';

interface CacheStatus {
  store: string;
  available: boolean;
  hits: number;
  misses: number;
  errors: number;
}

async function cacheStatus(origin: string): Promise<CacheStatus | undefined> {
  const answer = await postGraphQL(origin, JSON.stringify({ query: '{ upstream { cache { store available hits misses errors } } }' }), { timeoutMs: 10_000 });
  return answer.body ? (JSON.parse(answer.body) as { data?: { upstream?: { cache?: CacheStatus } } }).data?.upstream?.cache : undefined;
}

const loadFigures = (r: LoadResult) => `${r.reqPerSec.toFixed(0)} req/s, p99 ${r.latency.p99.toFixed(0)} ms`;

export const redisHang: Probe = {
  name: 'redis-hang',
  ownGateway: false,
  timeoutMs: (limits) => (limits.redisLoadS * 2 + 45) * 1000,
  skip: () => (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error ? 'redis-server is not on PATH' : undefined),
  async run(ctx): Promise<ProbeRow[]> {
    const { redisLoadS, redisConnections } = ctx.limits;
    const port = await freePort();
    const redis = await startCommand({
      name: 'redis',
      command: 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      env: childEnv({}),
      readyLine: /Ready to accept connections/,
      url: `redis://127.0.0.1:${port}`,
    });
    ctx.defer(() => redis.stop(3000));
    const gateway = await ctx.startGateway({ REDIS_URL: redis.url });
    // Continued before anything is stopped: a suspended store would hold the gateway's shutdown.
    ctx.defer(() => redis.child.kill('SIGCONT'));

    for (let i = 0; i < 5; i += 1) {
      const warm = await postGraphQL(originOf(gateway), JSON.stringify({ query: HIT_QUERY }), { timeoutMs: 10_000 });
      if (warm.body?.includes('"cached":true')) break;
    }
    const load = () =>
      measure({ url: gateway.url, body: JSON.stringify({ query: HIT_QUERY }), connections: redisConnections, durationS: redisLoadS, warmupS: 0, serverPid: gateway.pid });
    ctx.log(`cache hits with Redis up: ${redisLoadS} s at c=${redisConnections}`);
    const cacheBefore = await cacheStatus(originOf(gateway));
    const up = await load();
    const cacheUp = await cacheStatus(originOf(gateway));
    ctx.log(`the same with Redis suspended (SIGSTOP, hung rather than down): ${redisLoadS} s`);
    const simBefore = await simCounters(ctx.sim);
    redis.child.kill('SIGSTOP');
    const { value: hung, cost } = await ctx.observe(gateway, load);
    const cacheHung = await cacheStatus(originOf(gateway));
    const upstreamCalls = simCalls(await simCounters(ctx.sim), '/chat/completions') - simCalls(simBefore, '/chat/completions');
    redis.child.kill('SIGCONT');
    const grown = (from?: CacheStatus, to?: CacheStatus) =>
      from && to ? `hits +${to.hits - from.hits}, misses +${to.misses - from.misses}, errors +${to.errors - from.errors}` : '-';
    const errors = (r: LoadResult) => r.errors + r.non2xx + r.timeouts;
    return [
      {
        probe: this.name,
        attack: `cache-hit queries, c=${redisConnections}, ${redisLoadS} s with Redis up, then ${redisLoadS} s with Redis SIGSTOPped`,
        outcome: `errors+non2xx ${errors(up)} → ${errors(hung)}`,
        cost,
        harm: `${loadFigures(up)} → ${loadFigures(hung)}; cache (${cacheUp?.store ?? '?'}) while hung: ${grown(cacheUp, cacheHung)}, ${upstreamCalls} upstream calls`,
        details: { redisUp: up, redisHung: hung, upstreamCallsWhileHung: upstreamCalls, cache: { before: cacheBefore, afterUp: cacheUp, afterHung: cacheHung } },
      },
    ];
  },
};
