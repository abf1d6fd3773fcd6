import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { createLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { chatCalls, gql, startTestGateway } from '../helpers/gateway';
import { signTestToken } from '../helpers/tokens';
import { waitFor } from '../helpers/wait';

/**
 * Hot answers (src/graphql/hot-answers.ts): a repeated query of completions read from the
 * cache is answered without executing it again, and is what the full path would send.
 */

const ASK = 'query Ask($input: CompletionInput!) { completion(input: $input) { id content cached createdAt usage { totalTokens } } }';
const STATS = '{ upstream { cache { hotAnswers { entries served stale kept } } } }';

interface Stats {
  entries: number;
  served: number;
  stale: number;
  kept: number;
}

interface Answer {
  data?: { completion: { id: string; content: string; cached: boolean; createdAt: string } } | null;
  errors?: Array<{ extensions?: Record<string, unknown> }>;
  extensions?: { cost?: Record<string, number>; ftv1?: string };
}

async function post(gateway: Gateway, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(gateway.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: JSON.parse(text) as Answer };
}

/** The response text before its `extensions` (the per-response cost). */
const dataPart = (text: string): string => text.slice(0, text.indexOf(',"extensions":'));

describe('hot answers: repeats of cached completions served without executing again', () => {
  let gateway: Gateway;
  const stats = async (): Promise<Stats> => (await gql<{ upstream: { cache: { hotAnswers: Stats } } }>(gateway, STATS)).data!.upstream.cache.hotAnswers;
  const ask = (prompt: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    post(gateway, { query: ASK, variables: { input: { prompt, thinking: false, ...extra } } }, headers);

  beforeAll(async () => {
    gateway = await startTestGateway({ CACHE_TTL_SECONDS: '600' });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('serves the third ask hot: the same bytes as the full path but for the cost, no upstream call', async () => {
    const miss = await ask('hot one');
    expect(miss.json.data!.completion.cached).toBe(false);
    const before = await stats();
    const full = await ask('hot one'); // a cache hit through GraphQL: kept
    const afterFull = await stats();
    expect(afterFull.served).toBe(before.served);
    expect(afterFull.kept).toBe(before.kept + 1);
    const calls = chatCalls(gateway);
    const hot = await ask('hot one');
    const afterHot = await stats();
    expect(afterHot.served).toBe(before.served + 1);
    expect(chatCalls(gateway)).toBe(calls);
    expect(hot.status).toBe(200);
    expect(dataPart(hot.text)).toBe(dataPart(full.text));
    expect(hot.json.data!.completion.cached).toBe(true);
    expect(hot.text.endsWith('}\n')).toBe(true);
    expect(hot.headers.get('content-type')).toBe(full.headers.get('content-type'));
    expect(hot.headers.get('cache-control')).toMatch(/^max-age=(59[0-9]|600), public$/);
    expect(hot.json.extensions!.cost).toMatchObject({ upstreamCalls: 0, cacheHits: 1, joinedInFlight: 0, joinedRemote: 0, upstreamMs: 0, estimatedCostUsd: 0 });
    expect(Object.keys(JSON.parse(hot.text) as object)).toEqual(['data', 'extensions']);
  });

  it('keys on what changes the answer: another Accept, operation or variable goes its own way', async () => {
    await ask('accept me');
    const accept = { accept: 'application/graphql-response+json' };
    const full = await ask('accept me', {}, accept);
    expect(full.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    const before = await stats();
    const hot = await ask('accept me', {}, accept);
    expect((await stats()).served).toBe(before.served + 1);
    expect(hot.headers.get('content-type')).toBe(full.headers.get('content-type'));
    // A plain Accept is another key: first through the full path.
    const plain = await ask('accept me');
    expect(plain.headers.get('content-type')).toMatch(/^application\/json/);
    expect((await stats()).served).toBe(before.served + 1);
    // A router asking for an inline trace gets it, not a kept answer.
    const traced = await ask('accept me', {}, { ...accept, 'apollo-federation-include-trace': 'ftv1' });
    expect(traced.json.extensions!.ftv1).toEqual(expect.any(String));
    expect((await stats()).served).toBe(before.served + 1);
  });

  it('is never staler than the cache: an evicted or refreshed entry sends the next ask down the full path', async () => {
    const first = await ask('evict me');
    await ask('evict me');
    await ask('evict me');
    const before = await stats();
    const evicted = await gql<{ evictCompletion: boolean }>(gateway, 'mutation ($id: ID!) { evictCompletion(id: $id) }', { id: first.json.data!.completion.id });
    expect(evicted.data!.evictCompletion).toBe(true);
    const calls = chatCalls(gateway);
    const after = await ask('evict me');
    expect(after.json.data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(calls + 1);
    expect(await stats()).toMatchObject({ served: before.served, stale: before.stale + 1 });

    // Hot again, then refreshed: the stored answer is replaced, so the kept one is stale.
    await ask('evict me');
    const hot = await ask('evict me');
    expect((await stats()).served).toBe(before.served + 1);
    const refreshed = await ask('evict me', { cache: 'REFRESH' });
    expect(refreshed.json.data!.completion.cached).toBe(false);
    const next = await ask('evict me');
    expect(next.json.data!.completion).toMatchObject({ cached: true, createdAt: refreshed.json.data!.completion.createdAt });
    expect(await stats()).toMatchObject({ served: before.served + 1, stale: before.stale + 2 });
    expect(hot.json.data!.completion.id).toBe(next.json.data!.completion.id);
  });

  it('keeps only answers that are the cache alone: not live figures, errors, BYPASS, REFRESH or mutations', async () => {
    await ask('pure');
    const before = await stats();
    const mixed = 'query { completion(input: { prompt: "pure", thinking: false }) { id } upstream { calls } }';
    for (let i = 0; i < 3; i += 1) expect((await post(gateway, { query: mixed })).status).toBe(200);
    const partial = 'query { completions(inputs: [{ prompt: "pure", thinking: false }, { prompt: "x", temperature: 9 }]) { id } }';
    for (let i = 0; i < 3; i += 1) expect((await post(gateway, { query: partial })).json.errors).toHaveLength(1);
    const calls = chatCalls(gateway);
    for (let i = 0; i < 3; i += 1) expect((await ask('pure', { cache: 'BYPASS' })).json.data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(calls + 3);
    const create = 'mutation { createCompletion(input: { prompt: "pure", thinking: false }) { id } }';
    for (let i = 0; i < 3; i += 1) expect((await post(gateway, { query: create })).status).toBe(200);
    const after = await stats();
    expect(after.served).toBe(before.served);
    expect(after.kept).toBe(before.kept);
  });

  it('a hostile request is answered as before and never kept: long variables, deep nesting, malformed bodies', async () => {
    const before = await stats();
    const long = 'y'.repeat(40_000);
    for (let i = 0; i < 3; i += 1) expect((await ask(long)).json.data!.completion.content).toEqual(expect.any(String));
    const nested = `${'['.repeat(5000)}{"prompt":"deep"}${']'.repeat(5000)}`;
    for (let i = 0; i < 2; i += 1) {
      const deep = await post(gateway, `{"query":${JSON.stringify(ASK)},"variables":{"input":${nested}}}`);
      expect(deep.status).toBe(400);
      expect(deep.json.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    }
    for (const body of ['[{"query":"{ __typename }"}]', '{"query": 42}', '{"query":"{ __typename }","variables":[1]}']) {
      const odd = await post(gateway, body);
      expect(odd.status).toBeGreaterThanOrEqual(200);
      expect(odd.status).toBeLessThan(500);
    }
    const after = await stats();
    expect(after.served).toBe(before.served);
    expect(after.entries).toBe(before.entries);
  });

  it('with a shared Redis cache, an answer another replica refreshed is not served hot', async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', CACHE_NAMESPACE: `t${randomUUID().slice(0, 8)}` };
    const [a, b] = await Promise.all([startTestGateway(env), startTestGateway(env)]);
    try {
      const body = { query: ASK, variables: { input: { prompt: 'shared', thinking: false } } };
      const statsOf = async (gw: Gateway) => (await gql<{ upstream: { cache: { hotAnswers: Stats } } }>(gw, STATS)).data!.upstream.cache.hotAnswers;
      // The answer is written to Redis after it is sent: ask until a cache hit (the full
      // path) has been kept, then once more.
      await post(a, body);
      await waitFor(async () => (await post(a, body)).json.data!.completion.cached && (await statsOf(a)).kept === 1, { what: 'a kept answer' });
      const hot = await post(a, body);
      expect(hot.json.data!.completion.cached).toBe(true);
      expect(await statsOf(a)).toMatchObject({ served: 1, stale: 0 });
      // Replica b answers the same question anew and stores it in the shared cache (also
      // after answering): replica a finds its kept answer stale once the write has landed,
      // and answers from the refreshed entry.
      const refreshed = await post(b, { ...body, variables: { input: { ...body.variables.input, cache: 'REFRESH' } } });
      expect(refreshed.json.data!.completion.cached).toBe(false);
      let next = hot;
      await waitFor(
        async () => {
          next = await post(a, body);
          return (await statsOf(a)).stale === 1;
        },
        { what: 'the refreshed entry seen by replica a' },
      );
      expect(next.json.data!.completion).toMatchObject({ cached: true, createdAt: refreshed.json.data!.completion.createdAt });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('holds at most HOT_ANSWERS_MAX_ENTRIES requests, and none with 0', async () => {
    const small = await startTestGateway({ HOT_ANSWERS_MAX_ENTRIES: '2' });
    const off = await startTestGateway({ HOT_ANSWERS_MAX_ENTRIES: '0' });
    try {
      for (const prompt of ['a', 'b', 'c', 'd']) {
        for (let i = 0; i < 2; i += 1) await post(small, { query: ASK, variables: { input: { prompt } } });
      }
      const figures = (await gql<{ upstream: { cache: { hotAnswers: Stats } } }>(small, STATS)).data!.upstream.cache.hotAnswers;
      expect(figures.kept).toBe(4);
      expect(figures.entries).toBe(2);
      for (let i = 0; i < 3; i += 1) expect((await post(off, { query: ASK, variables: { input: { prompt: 'a' } } })).status).toBe(200);
      expect((await gql<{ upstream: { cache: { hotAnswers: Stats | null } } }>(off, STATS)).data!.upstream.cache.hotAnswers).toBeNull();
    } finally {
      await Promise.all([small.close(), off.close()]);
    }
  });
});

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'deepseek-gateway';
const SECRET = 'an-end-to-end-test-secret-of-at-least-32-bytes';

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'hot-answers-')), name);
  writeFileSync(path, text);
  return path;
}

function token(sub: string, tenant: string, scope = 'completions:read'): Promise<string> {
  return signTestToken({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, sub, tenant, scope });
}

describe('hot answers are admitted like any operation (tokens, tenants, quotas, telemetry)', () => {
  let gateway: Gateway;
  let telemetry: Telemetry;
  const spans = new InMemorySpanExporter();
  const lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const config = testConfig({
      SIMULATOR_LATENCY_MS: '0',
      SIMULATOR_TOKEN_DELAY_MS: '0',
      AUTH_MODE: 'jwt',
      AUTH_SECRET_FILE: tempFile('secret', SECRET),
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
      CACHE_SCOPE: 'tenant',
      QUOTAS_FILE: tempFile('quotas.json', JSON.stringify({ default: { requestsPerMinute: 1000 }, tenants: { rpm: { per: 'tenant', requestsPerMinute: 4 } } })),
    });
    telemetry = startTelemetry(config.telemetry, { spanExporter: spans });
    gateway = await startGateway(config, logger, { telemetry });
  });
  afterAll(async () => {
    await gateway.close();
    await telemetry.shutdown();
  });

  const as = async (sub: string, tenant: string, scope?: string) => ({ authorization: `Bearer ${await token(sub, tenant, scope)}` });
  const body = { query: ASK, variables: { input: { prompt: 'tenant answer', thinking: false } } };

  it('serves a tenant its own hot answer, private, with its log line and span; another tenant or caller gets its own', async () => {
    const alice = await as('alice', 'acme');
    await post(gateway, body, alice);
    const full = await post(gateway, body, alice);
    const calls = chatCalls(gateway);
    lines.length = 0;
    const hot = await post(gateway, body, await as('bob', 'acme'));
    expect(chatCalls(gateway)).toBe(calls);
    expect(dataPart(hot.text)).toBe(dataPart(full.text));
    expect(hot.headers.get('cache-control')).toMatch(/^max-age=\d+, private$/);
    const line = lines.find((entry) => entry.msg === 'graphql request');
    expect(line).toMatchObject({ tenant: 'acme', status: 200, outcome: 'ok', operationName: 'Ask', operationType: 'query', cacheHits: 1, upstreamCalls: 0, hotAnswer: true });
    const span = spans.getFinishedSpans().find((entry) => entry.attributes['gateway.hot_answer'] === true);
    expect(span?.name).toBe('query Ask');
    expect(span?.attributes['gateway.tenant']).toBe('acme');

    // Another tenant has a cache of its own (CACHE_SCOPE=tenant): its own upstream call.
    const other = await post(gateway, body, await as('carol', 'globex'));
    expect(other.json.data!.completion.cached).toBe(false);
    expect(chatCalls(gateway)).toBe(calls + 1);
    // A caller without the scope, or without a token, is refused as on the full path.
    const forbidden = await post(gateway, body, await as('dave', 'acme', 'completions:stream'));
    expect(forbidden.json.data ?? null).toBeNull();
    expect(forbidden.json.errors![0].extensions!.code).toBe('FORBIDDEN');
    const anonymous = await post(gateway, body);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('counts hot answers against requestsPerMinute: the fifth ask of a tenant limited to 4 is a 429', async () => {
    const headers = await as('erin', 'rpm');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await post(gateway, body, headers)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
  });
});
