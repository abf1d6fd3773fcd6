import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '../../src/app';
import { chatCalls, startTestGateway } from '../helpers/gateway';
import { signTestToken } from '../helpers/tokens';

/**
 * Direct operations (src/graphql/direct-operations.ts): a query Apollo ran once is run again
 * without Apollo's pipeline. Every request here goes to two gateways built alike but for
 * GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES (on: `direct`; 0: `apollo`), in the same order, and
 * their answers must be the same (status, headers, body), the per-response timings of
 * `extensions.cost` aside; the counters say which path served each.
 */

const ASK = 'query Ask($prompt: String!) { completion(input: { prompt: $prompt, thinking: false }) { id content cached finishReason __typename } }';
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'deepseek-gateway';
const SECRET = 'a-direct-operations-test-secret-of-32-bytes';
const COMPARED_HEADERS = ['content-type', 'cache-control', 'etag', 'retry-after', 'www-authenticate'];

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'direct-operations-')), name);
  writeFileSync(path, text);
  return path;
}

interface Answer {
  status: number;
  headers: Record<string, string | null>;
  text: string;
  body: Record<string, unknown> | undefined;
}

interface Sent {
  method?: 'GET' | 'POST';
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  headers?: Record<string, string>;
}

async function send(gateway: Gateway, request: Sent): Promise<Answer> {
  const { method = 'POST', query, variables, operationName, headers = {} } = request;
  let response: Response;
  if (method === 'GET') {
    const params = new URLSearchParams({ query });
    if (variables) params.set('variables', JSON.stringify(variables));
    if (operationName) params.set('operationName', operationName);
    response = await fetch(`${gateway.graphqlUrl}?${params}`, { headers: { 'apollo-require-preflight': 'true', ...headers } });
  } else {
    response = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables, operationName }),
    });
  }
  const text = await response.text();
  let body: Record<string, unknown> | undefined;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: Object.fromEntries(COMPARED_HEADERS.map((name) => [name, response.headers.get(name)])), text, body };
}

/** What must be equal: the body without the cost's timings, and `max-age` within a second. */
function comparable(answer: Answer): unknown {
  const body = answer.body && structuredClone(answer.body);
  const cost = (body?.extensions as { cost?: Record<string, unknown> } | undefined)?.cost;
  if (cost) {
    for (const timing of ['upstreamMs', 'overheadMs', 'totalMs']) {
      expect(typeof cost[timing]).toBe('number');
      delete cost[timing];
    }
  }
  // A failed upstream call names DeepSeek's trace id, which differs per call.
  for (const error of (body?.errors as Array<{ extensions?: Record<string, unknown> }> | undefined) ?? []) {
    if (error.extensions?.upstreamTraceId !== undefined) error.extensions.upstreamTraceId = 'a trace id';
    // A quota's wait is counted from the moment each gateway refused: equal to the second.
    if (typeof error.extensions?.retryAfterMs === 'number') error.extensions.retryAfterMs = Math.round(error.extensions.retryAfterMs / 10_000);
  }
  const cacheControl = answer.headers['cache-control']?.replace(/max-age=(\d+)/, (_all, age: string) => `max-age=${Math.floor(Number(age) / 10)}x`);
  return { status: answer.status, headers: { ...answer.headers, 'cache-control': cacheControl }, body, keys: answer.body && Object.keys(answer.body) };
}

describe('direct operations: queries Apollo ran before, answered without its pipeline, byte for byte as Apollo answers', () => {
  let direct: Gateway;
  let apollo: Gateway;
  const served = () => direct.directOperations!.stats().served;

  /** Sends `request` to both gateways; their answers must match. Returns the direct gateway's and how it was served. */
  async function both(request: Sent): Promise<{ answer: Answer; viaDirect: boolean }> {
    const before = served();
    const answer = await send(direct, request);
    const viaDirect = served() === before + 1;
    const reference = await send(apollo, request);
    expect(comparable(answer)).toEqual(comparable(reference));
    // Apollo's byte layout: errors, data, extensions, then a newline.
    if (answer.body) expect(answer.text.endsWith('}\n')).toBe(true);
    return { answer, viaDirect };
  }

  beforeAll(async () => {
    const env = {
      CACHE_TTL_SECONDS: '600',
      // Hot answers would serve repeats themselves: off, so every repeat is executed.
      HOT_ANSWERS_MAX_ENTRIES: '0',
      QUOTAS_FILE: tempFile('quotas.json', JSON.stringify({ default: { requestsPerMinute: 1000 }, tenants: { tight: { per: 'tenant', upstreamCallsPerMinute: 1 } } })),
      AUTH_MODE: 'jwt',
      AUTH_SECRET_FILE: tempFile('secret', SECRET),
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
    };
    [direct, apollo] = await Promise.all([startTestGateway(env), startTestGateway({ ...env, GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES: '0' })]);
  });
  afterAll(async () => {
    await Promise.all([direct.close(), apollo.close()]);
  });

  const bearer = async (tenant = 'acme', scope = 'completions:read') => ({
    authorization: `Bearer ${await signTestToken({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, sub: 'someone', tenant, scope })}`,
  });

  it('runs a miss and a hit directly once Apollo has run the document, with the same bytes, calls and cache policy', async () => {
    const headers = await bearer();
    const first = await both({ query: ASK, variables: { prompt: 'direct first' }, headers });
    expect(first.viaDirect).toBe(false); // Apollo runs it, and hands it over
    expect(direct.directOperations!.stats().plans).toBeGreaterThan(0);

    const calls = chatCalls(direct);
    const miss = await both({ query: ASK, variables: { prompt: 'direct miss' }, headers });
    expect(miss.viaDirect).toBe(true);
    expect(chatCalls(direct)).toBe(calls + 1);
    expect(miss.answer.status).toBe(200);
    expect(miss.answer.body).toMatchObject({ data: { completion: { cached: false, __typename: 'Completion' } }, extensions: { cost: { upstreamCalls: 1, cacheHits: 0 } } });
    // A token's answer is the caller's own: private, for as long as the store keeps it.
    expect(miss.answer.headers['cache-control']).toMatch(/^max-age=(59\d|600), private$/);

    const hit = await both({ query: ASK, variables: { prompt: 'direct miss' }, headers });
    expect(hit.viaDirect).toBe(true);
    expect(chatCalls(direct)).toBe(calls + 1);
    expect(hit.answer.body).toMatchObject({ data: { completion: { cached: true } }, extensions: { cost: { upstreamCalls: 0, cacheHits: 1 } } });
    expect(hit.answer.headers['cache-control']).toMatch(/^max-age=(59\d|600), private$/);

    // BYPASS answers are not kept: not cacheable.
    const writer = await bearer('acme', 'completions:read completions:write');
    const bypass = 'query Bypass($prompt: String!) { completion(input: { prompt: $prompt, thinking: false, cache: BYPASS }) { id cached } }';
    await both({ query: bypass, variables: { prompt: 'direct bypass' }, headers: writer });
    const fresh = await both({ query: bypass, variables: { prompt: 'direct bypass' }, headers: writer });
    expect(fresh.viaDirect).toBe(true);
    expect(fresh.answer.headers['cache-control']).toBe('no-store');
  });

  it('runs a selection of usage as Apollo does: Usage inherits the cache policy of its parent', async () => {
    const headers = await bearer();
    const query = 'query Used($prompt: String!) { completion(input: { prompt: $prompt, thinking: false }) { id cached usage { promptTokens totalTokens __typename } } }';
    await both({ query, variables: { prompt: 'usage first' }, headers });
    const miss = await both({ query, variables: { prompt: 'usage second' }, headers });
    expect(miss.viaDirect).toBe(true);
    expect(miss.answer.body).toMatchObject({ data: { completion: { cached: false, usage: { totalTokens: expect.any(Number), __typename: 'Usage' } } } });
    const hit = await both({ query, variables: { prompt: 'usage second' }, headers });
    expect(hit.viaDirect).toBe(true);
    expect(hit.answer.headers['cache-control']).toMatch(/^max-age=(59\d|600), private$/);
  });

  it('answers GET as Apollo does: an ETag for a cacheable answer, a 304 to its revalidation, none for an uncacheable one', async () => {
    const headers = await bearer();
    const request: Sent = { method: 'GET', query: ASK, variables: { prompt: 'direct over GET' }, headers };
    await both(request); // learnt (and a miss)
    const hit = await both(request);
    expect(hit.viaDirect).toBe(true);
    expect(hit.answer.headers.etag).toMatch(/^"[\w-]+"$/);
    const revalidated = await both({ ...request, headers: { ...headers, 'if-none-match': hit.answer.headers.etag! } });
    expect(revalidated.viaDirect).toBe(true);
    expect(revalidated.answer.status).toBe(304);
    expect(revalidated.answer.text).toBe('');
    const writer = await bearer('acme', 'completions:read completions:write');
    const bypass: Sent = { method: 'GET', query: ASK.replace('thinking: false', 'thinking: false, cache: BYPASS'), variables: { prompt: 'bypass over GET' }, headers: writer };
    await both(bypass);
    const uncacheable = await both(bypass);
    expect(uncacheable.viaDirect).toBe(true);
    expect(uncacheable.answer.headers.etag).toBeNull();
    expect(uncacheable.answer.headers['cache-control']).toBe('no-store');
  });

  it('negotiates the content type as Apollo does, and leaves a 406 to Apollo', async () => {
    const headers = await bearer();
    await both({ query: ASK, variables: { prompt: 'accept' }, headers });
    const typed = await both({ query: ASK, variables: { prompt: 'accept' }, headers: { ...headers, accept: 'application/graphql-response+json, application/json;q=0.9' } });
    expect(typed.viaDirect).toBe(true);
    expect(typed.answer.headers['content-type']).toBe('application/graphql-response+json; charset=utf-8');
    const wild = await both({ query: ASK, variables: { prompt: 'accept' }, headers: { ...headers, accept: '*/*' } });
    expect(wild.viaDirect).toBe(true);
    expect(wild.answer.headers['content-type']).toBe('application/json; charset=utf-8');
    const refused = await both({ query: ASK, variables: { prompt: 'accept' }, headers: { ...headers, accept: 'text/html' } });
    expect(refused.viaDirect).toBe(false);
    expect(refused.answer.status).toBe(406);
  });

  it('runs aliased completion and FIM fields together, each hinting the cache policy', async () => {
    const headers = await bearer('acme', 'completions:read completions:write');
    const query = `query Two($a: String!, $b: String!, $policy: CachePolicy!) {
      chat: completion(input: { prompt: $a, thinking: false }) { id content cached }
      fim: fimCompletion(input: { prompt: $b, suffix: "}", cache: $policy }) { id content cached }
    }`;
    await both({ query, variables: { a: 'two a', b: 'def f(', policy: 'USE' }, operationName: 'Two', headers });
    const repeat = await both({ query, variables: { a: 'two a', b: 'def f(', policy: 'USE' }, operationName: 'Two', headers });
    expect(repeat.viaDirect).toBe(true);
    expect(repeat.answer.headers['cache-control']).toMatch(/^max-age=\d+, private$/);
    // One answer through the cache, one past it: not cacheable as a whole.
    const mixed = await both({ query, variables: { a: 'two a', b: 'def f(', policy: 'BYPASS' }, operationName: 'Two', headers });
    expect(mixed.viaDirect).toBe(true);
    expect(mixed.answer.headers['cache-control']).toBe('no-store');
  });

  it('answers errors from the resolvers as Apollo does: bad input, a forbidden policy, a quota refusal (429)', async () => {
    const headers = await bearer();
    await both({ query: ASK, variables: { prompt: 'errors' }, headers });

    const bad = await both({ query: ASK, variables: { prompt: '' }, headers });
    expect(bad.viaDirect).toBe(true);
    expect(bad.answer.body).toMatchObject({ data: null, errors: [{ extensions: { code: 'BAD_USER_INPUT' }, path: ['completion'] }] });
    expect(bad.answer.headers['cache-control']).toBe('no-store');

    const policy = 'query Fresh($prompt: String!) { completion(input: { prompt: $prompt, thinking: false, cache: REFRESH }) { id cached } }';
    await both({ query: policy, variables: { prompt: 'refresh me' }, headers });
    const forbidden = await both({ query: policy, variables: { prompt: 'refresh me' }, headers });
    expect(forbidden.viaDirect).toBe(true);
    expect(forbidden.answer.body).toMatchObject({ data: null, errors: [{ extensions: { code: 'FORBIDDEN' } }] });

    // The tenant may make one upstream call a minute: the second distinct prompt is refused whole.
    const tight = await bearer('tight');
    await both({ query: ASK, variables: { prompt: 'tight one' }, headers: tight });
    const refused = await both({ query: ASK, variables: { prompt: 'tight two' }, headers: tight });
    expect(refused.viaDirect).toBe(true);
    expect(refused.answer.status).toBe(429);
    expect(refused.answer.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('answers an upstream failure as Apollo does', async () => {
    const headers = await bearer();
    await both({ query: ASK, variables: { prompt: 'upstream ok' }, headers });
    for (const gateway of [direct, apollo]) gateway.simulator!.faults.inject({ kind: 'status', status: 400, message: 'Invalid max_tokens value' });
    try {
      const failed = await both({ query: ASK, variables: { prompt: 'upstream fails' }, headers });
      expect(failed.viaDirect).toBe(true);
      expect(failed.answer.body).toMatchObject({ data: null, errors: [{ path: ['completion'] }] });
    } finally {
      for (const gateway of [direct, apollo]) gateway.simulator!.faults.clear();
    }
  });

  it('leaves to Apollo what it must judge: bad variables, refused credentials, other shapes, persisted-query extensions', async () => {
    const headers = await bearer();
    await both({ query: ASK, variables: { prompt: 'judged' }, headers });

    const missing = await both({ query: ASK, variables: {}, headers });
    expect(missing.viaDirect).toBe(false);
    expect(missing.answer.status).toBe(400);
    const wrongType = await both({ query: ASK, variables: { prompt: 42 }, headers });
    expect(wrongType.viaDirect).toBe(false);
    // The raw limits come first: oversized variables are refused at admission, before any coercion.
    const oversized = await both({ query: ASK, variables: { prompt: 'judged', junk: Array.from({ length: 5000 }, () => 1) }, headers });
    expect(oversized.viaDirect).toBe(false);
    expect(oversized.answer.status).toBe(400);
    expect(oversized.answer.body).toMatchObject({ errors: [{ extensions: { code: 'BAD_USER_INPUT' } }] });

    // No token is a caller without scopes, admitted: the field's guard refuses it, a 401 as a whole.
    const anonymous = await both({ query: ASK, variables: { prompt: 'judged' } });
    expect(anonymous.viaDirect).toBe(true);
    expect(anonymous.answer.status).toBe(401);
    expect(anonymous.answer.headers['www-authenticate']).toBe('Bearer');
    // A token that does not verify is refused at admission: Apollo sends that refusal.
    const forged = await both({ query: ASK, variables: { prompt: 'judged' }, headers: { authorization: 'Bearer not.a.token' } });
    expect(forged.viaDirect).toBe(false);
    expect(forged.answer.status).toBe(401);

    // Other root fields, fragments and directives are not kept.
    for (const query of [
      'query Typed($prompt: String!) { __typename completion(input: { prompt: $prompt, thinking: false }) { id } }',
      'query Spread($prompt: String!) { completion(input: { prompt: $prompt, thinking: false }) { ...F } } fragment F on Completion { id }',
      'query Skipped($prompt: String!, $no: Boolean!) { completion(input: { prompt: $prompt, thinking: false }) { id content @skip(if: $no) } }',
    ]) {
      await both({ query, variables: { prompt: 'shapes', no: true }, headers });
      const again = await both({ query, variables: { prompt: 'shapes', no: true }, headers });
      expect(again.viaDirect).toBe(false);
    }

    // A mutation is never run directly, nor is a query sent with extensions.
    const withExtensions = await both({ query: ASK, variables: { prompt: 'judged' }, headers });
    expect(withExtensions.viaDirect).toBe(true);
    const before = served();
    const response = await fetch(direct.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query: ASK, variables: { prompt: 'judged' }, extensions: { clientLibrary: { name: 'x' } } }),
    });
    expect(response.status).toBe(200);
    expect(served()).toBe(before);
  });

  it('is bounded, and turned off with 0', async () => {
    const small = await startTestGateway({ GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES: '2' });
    try {
      for (let i = 0; i < 5; i += 1) {
        const query = `query Q${i}($prompt: String!) { completion(input: { prompt: $prompt, thinking: false }) { id } }`;
        await send(small, { query, variables: { prompt: 'bounded' } });
      }
      expect(small.directOperations!.stats().plans).toBe(2);
    } finally {
      await small.close();
    }
    expect(apollo.directOperations).toBeUndefined();
  });
});
