import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { Gateway } from '../../src/app';
import { chatCalls, startTestGateway } from '../helpers/gateway';

const ASK = 'query Ask($input: CompletionInput!) { completion(input: $input) { id content cached usage { totalTokens } } }';
const SECRET = 'an-end-to-end-test-secret-of-at-least-32-bytes';

/** A GET as a browser or CDN sends it (CSRF prevention asks for a preflight-forcing header). */
async function get(gateway: Gateway, params: Record<string, unknown>, headers: Record<string, string> = {}) {
  const url = new URL(gateway.graphqlUrl);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, typeof value === 'string' ? value : JSON.stringify(value));
  const response = await fetch(url, { headers: { 'apollo-require-preflight': 'true', ...headers } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? (JSON.parse(text) as { data?: unknown; errors?: unknown[] }) : undefined };
}

describe('repeats a browser or CDN can answer: Cache-Control from cache hints, ETags and 304s on GET', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway({ CACHE_TTL_SECONDS: '600' });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('a completion read through the cache is cacheable for what its stored copy has left, public without a caller', async () => {
    const params = { query: ASK, variables: { input: { prompt: 'cache me', thinking: false } } };
    const first = await get(gateway, params);
    expect(first.status).toBe(200);
    // What the stored copy has left of the 600 s: its age counts from DeepSeek's `created`,
    // whole seconds, so a loaded machine may see a second or two gone.
    expect(first.headers.get('cache-control')).toMatch(/^max-age=(59\d|600), public$/);
    expect(first.headers.get('etag')).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    // The first answer says `cached: false`, the repeats `cached: true`: a new representation.
    const hit = await get(gateway, params);
    expect(hit.headers.get('etag')).not.toBe(first.headers.get('etag'));
    // Repeats have the same data: the same ETag, whatever each one's extensions.cost says
    // (its timings differ from one response to the next).
    const repeat = await get(gateway, params);
    expect(repeat.headers.get('etag')).toBe(hit.headers.get('etag'));
    expect(JSON.parse(repeat.text)).toHaveProperty('extensions.cost.totalMs');
  });

  it('answers a revalidation with the current ETag with 304 and no body, and a stale one with the answer', async () => {
    const params = { query: ASK, variables: { input: { prompt: 'revalidate me', thinking: false } } };
    await get(gateway, params); // the call; from now on the answer comes from the cache
    const first = await get(gateway, params);
    const etag = first.headers.get('etag')!;
    const calls = chatCalls(gateway);
    const notModified = await get(gateway, params, { 'if-none-match': `"other", W/${etag}` });
    expect(notModified.status).toBe(304);
    expect(notModified.text).toBe('');
    expect(notModified.headers.get('etag')).toBe(etag);
    expect(chatCalls(gateway)).toBe(calls);
    const stale = await get(gateway, params, { 'if-none-match': '"something-else"' });
    expect(stale.status).toBe(200);
    expect(stale.body?.data).toEqual(first.body?.data);
  });

  it('a persisted query named by its hash alone over GET is cached the same way', async () => {
    const hash = createHash('sha256').update(ASK).digest('hex');
    const variables = { input: { prompt: 'persisted and cached', thinking: false } };
    const extensions = { persistedQuery: { version: 1, sha256Hash: hash } };
    const unknown = await get(gateway, { variables, extensions });
    expect(JSON.stringify(unknown.body)).toMatch(/PERSISTED_QUERY_NOT_FOUND/);
    await get(gateway, { query: ASK, variables, extensions }); // registers it (and makes the call)
    const registered = await get(gateway, { query: ASK, variables, extensions });
    const byHash = await get(gateway, { variables, extensions });
    expect(byHash.status).toBe(200);
    expect(byHash.headers.get('cache-control')).toMatch(/^max-age=\d+, public$/);
    expect(byHash.headers.get('etag')).toBe(registered.headers.get('etag'));
    expect((await get(gateway, { variables, extensions }, { 'if-none-match': byHash.headers.get('etag')! })).status).toBe(304);
  });

  it('keeps uncacheable what must be fresh: REFRESH and BYPASS answers, errors, operator figures; no ETag on POST', async () => {
    for (const cache of ['REFRESH', 'BYPASS']) {
      const fresh = await get(gateway, { query: ASK, variables: { input: { prompt: 'always fresh', thinking: false, cache } } });
      expect(fresh.status).toBe(200);
      expect(fresh.headers.get('cache-control')).toBe('no-store');
      expect(fresh.headers.get('etag')).toBeNull();
    }
    const figures = await get(gateway, { query: '{ upstream { circuit } }' });
    expect(figures.headers.get('cache-control')).toBe('no-store');
    expect(figures.headers.get('etag')).toBeNull();
    const invalid = await get(gateway, { query: ASK, variables: { input: { prompt: 'x', temperature: 9 } } });
    expect(invalid.headers.get('cache-control')).toBe('no-store');
    expect(invalid.headers.get('etag')).toBeNull();
    const post = await fetch(gateway.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: ASK, variables: { input: { prompt: 'cache me', thinking: false } } }),
    });
    await post.text();
    expect(post.headers.get('cache-control')).toMatch(/^max-age=\d+, public$/);
    expect(post.headers.get('etag')).toBeNull();
  });

  it('is private for a caller with a token (never stored by a shared cache)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'http-caching-'));
    writeFileSync(join(dir, 'secret'), SECRET);
    const secured = await startTestGateway({ AUTH_MODE: 'jwt', AUTH_SECRET_FILE: join(dir, 'secret'), AUTH_ISSUER: 'urn:test', AUTH_AUDIENCE: 'gw' });
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ scope: 'completions:read', tenant: 'acme' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('urn:test')
        .setAudience('gw')
        .setSubject('u1')
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(SECRET));
      const answer = await get(secured, { query: ASK, variables: { input: { prompt: 'mine', thinking: false } } }, { authorization: `Bearer ${token}` });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toMatch(/^max-age=\d+, private$/);
    } finally {
      await secured.close();
    }
  });
});
