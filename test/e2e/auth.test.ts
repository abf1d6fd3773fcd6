import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { createLogger } from '../../src/telemetry/logger';
import { gql, startTestGateway, type GraphQLResponse } from '../helpers/gateway';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'deepseek-gateway';
const SECRET = 'an-end-to-end-test-secret-of-at-least-32-bytes';

function secretFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'auth-e2e-')), 'secret');
  writeFileSync(path, SECRET);
  return path;
}

interface Claims {
  scope?: string;
  tenant?: string;
  sub?: string;
  exp?: number;
  aud?: string;
}

async function token(claims: Claims = {}, secret = SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: claims.scope ?? 'completions:read', tenant: claims.tenant ?? 'acme' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setSubject(claims.sub ?? 'user-1')
    .setIssuedAt(now - 10)
    .setExpirationTime(claims.exp ?? now + 600)
    .sign(new TextEncoder().encode(secret));
}

const ASK = 'query Ask($input: CompletionInput!) { completion(input: $input) { id content cached } }';

describe('caller identity (AUTH_MODE=jwt)', () => {
  let gateway: Gateway;
  const lines: string[] = [];

  beforeAll(async () => {
    const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
    gateway = await startGateway(
      testConfig({
        SIMULATOR_LATENCY_MS: '0',
        SIMULATOR_TOKEN_DELAY_MS: '0',
        AUTH_MODE: 'jwt',
        AUTH_SECRET_FILE: secretFile(),
        AUTH_ISSUER: ISSUER,
        AUTH_AUDIENCE: AUDIENCE,
      }),
      logger,
    );
  });
  afterAll(async () => {
    await gateway.close();
  });

  const calls = (): number => gateway.simulator!.counters.total;
  const ask = async (bearer: string | undefined, input: Record<string, unknown>, query = ASK): Promise<GraphQLResponse> =>
    gql(gateway, query, { input }, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });

  describe('over HTTP', () => {
    it('refuses an operation without a token as a whole: 401, WWW-Authenticate: Bearer, no upstream call', async () => {
      const before = calls();
      const res = await ask(undefined, { prompt: 'no token', thinking: false });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(res.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
      expect(calls()).toBe(before);
    });

    it.each([
      ['a forged signature', () => token({}, 'another-secret-that-is-also-at-least-32-bytes'), 'bad signature'],
      ['another audience', () => token({ aud: 'someone-else' }), 'wrong audience'],
      ['an expired token', () => token({ exp: Math.floor(Date.now() / 1000) - 3600 }), 'expired'],
      ['alg: none', async () => `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: 9999999999 })).toString('base64url')}.`, 'algorithm not allowed'],
    ])('answers %s with 401 and an invalid_token challenge', async (_name, make, reason) => {
      const before = calls();
      const res = await ask(await make(), { prompt: 'bad token', thinking: false });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", error_description="${reason}"`);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason });
      expect(calls()).toBe(before);
    });

    it('serves a caller with the scope, and refuses a field that needs another one with FORBIDDEN naming it', async () => {
      const reader = await token({ scope: 'completions:read' });
      const ok = await ask(reader, { prompt: 'allowed', thinking: false });
      expect(ok.errors).toBeUndefined();
      expect(ok.data).toMatchObject({ completion: { cached: false } });

      const before = calls();
      const admin = await gql(gateway, '{ upstream { mode } }', undefined, { headers: { authorization: `Bearer ${reader}` } });
      expect(admin.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScopes: 'gateway:admin' });
      const refresh = await ask(reader, { prompt: 'allowed', thinking: false, cache: 'REFRESH' });
      expect(refresh.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScopes: 'completions:write' });
      const create = await gql(gateway, 'mutation { createCompletion(input: {prompt: "x", thinking: false}) { id } }', undefined, {
        headers: { authorization: `Bearer ${reader}` },
      });
      expect(create.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScopes: 'completions:write' });
      expect(calls()).toBe(before);

      const operator = await token({ scope: 'gateway:admin completions:read' });
      const status = await gql(gateway, '{ upstream { mode } }', undefined, { headers: { authorization: `Bearer ${operator}` } });
      expect(status.data).toEqual({ upstream: { mode: 'SIMULATOR' } });
    });

    it('keeps tenants apart: another tenant can neither read, evict nor detect a stored answer, even knowing its id', async () => {
      const acme = await token({ tenant: 'acme', scope: 'completions:read completions:write' });
      const globex = await token({ tenant: 'globex', scope: 'completions:read completions:write' });
      const stored = await ask(acme, { prompt: 'an acme secret question', thinking: false });
      const id = (stored.data as { completion: { id: string } }).completion.id;

      const entity = await gql(gateway, 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Completion { id content } } }', { r: [{ __typename: 'Completion', id }] }, {
        headers: { authorization: `Bearer ${globex}` },
      });
      expect(entity.data).toEqual({ _entities: [null] });
      const evicted = await gql(gateway, `mutation { evictCompletion(id: "${id}") }`, undefined, { headers: { authorization: `Bearer ${globex}` } });
      expect(evicted.data).toEqual({ evictCompletion: false });
      // The same prompt from the other tenant is its own miss: `cached` tells it nothing.
      const before = calls();
      const theirs = await ask(globex, { prompt: 'an acme secret question', thinking: false });
      expect(theirs.data).toMatchObject({ completion: { id, cached: false } });
      expect(calls()).toBe(before + 1);
      // …while acme still has its own.
      expect((await ask(acme, { prompt: 'an acme secret question', thinking: false })).data).toMatchObject({ completion: { cached: true } });
    });

    it('refuses a token in the query string, and survives a 50 KB header', async () => {
      const query = encodeURIComponent('{ __typename }');
      const inUrl = await fetch(`${gateway.graphqlUrl}?query=${query}&access_token=${await token()}`, { headers: { 'apollo-require-preflight': 'true' } });
      expect(inUrl.status).toBe(400);
      expect(JSON.stringify(await inUrl.json())).toMatch(/Authorization header/);
      const huge = await fetch(gateway.graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${'a'.repeat(50_000)}` },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(huge.status).toBe(431);
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    });

    it('never writes a token or a claim other than the tenant to the log', async () => {
      const secretSubject = 'subject-7f3a9c';
      const good = await token({ sub: secretSubject, tenant: 'acme' });
      await ask(good, { prompt: 'log me', thinking: false });
      await ask(`${good}x`, { prompt: 'log me', thinking: false });
      const everything = lines.join('\n');
      expect(everything).not.toContain(good.split('.')[1]!);
      expect(everything).not.toContain(good.split('.')[2]!);
      expect(everything).not.toContain(secretSubject);
      const requests = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'graphql request' && entry.tenant === 'acme');
      expect(requests.length).toBeGreaterThan(0);
    });
  });

  describe('over WebSocket (token in connection_init)', () => {
    const subscribe = (
      authorization: string | undefined,
      scope = 'subscription { completionStream(input: {prompt: "ws", thinking: false}) { delta } }',
      carrier: 'authorization' | 'token' | 'header' = 'authorization',
    ) =>
      new Promise<{ outcome: string; detail?: unknown }>((resolve) => {
        // `token`: what Apollo Router's passthrough mode sends; `header`: the upgrade request's Authorization.
        const webSocketImpl =
          carrier === 'header' && authorization
            ? class extends WebSocket {
                constructor(address: string, protocols?: string | string[]) {
                  super(address, protocols, { headers: { authorization } });
                }
              }
            : WebSocket;
        const client = createClient({
          url: gateway.graphqlUrl.replace('http', 'ws'),
          webSocketImpl,
          retryAttempts: 0,
          connectionParams: !authorization || carrier === 'header' ? {} : carrier === 'token' ? { token: authorization } : { authorization },
          on: { closed: (event) => resolve({ outcome: 'closed', detail: (event as { code?: number }).code }) },
        });
        client.subscribe(
          { query: scope },
          {
            next: () => undefined,
            error: (error) => {
              resolve({ outcome: 'error', detail: error });
              void client.dispose();
            },
            complete: () => {
              resolve({ outcome: 'complete' });
              void client.dispose();
            },
          },
        );
      });

    it('streams for a caller with completions:stream, and refuses the others typed', async () => {
      expect(await subscribe(`Bearer ${await token({ scope: 'completions:stream' })}`)).toEqual({ outcome: 'complete' });
      const noScope = await subscribe(`Bearer ${await token({ scope: 'completions:read' })}`);
      expect(noScope.outcome).toBe('error');
      expect(JSON.stringify(noScope.detail)).toMatch(/FORBIDDEN/);
      const none = await subscribe(undefined);
      expect(JSON.stringify(none.detail)).toMatch(/UNAUTHENTICATED/);
      // Bad credentials close the connection: 4403 Forbidden.
      expect(await subscribe('Bearer not-a-token')).toEqual({ outcome: 'closed', detail: 4403 });
    });

    it('takes the token where a router puts it: connection_init `token` (Apollo Router passthrough) or the upgrade request\'s Authorization header', async () => {
      const good = `Bearer ${await token({ scope: 'completions:stream' })}`;
      const query = 'subscription { completionStream(input: {prompt: "ws via router", thinking: false}) { delta } }';
      expect(await subscribe(good, query, 'token')).toEqual({ outcome: 'complete' });
      expect(await subscribe(good, query, 'header')).toEqual({ outcome: 'complete' });
      expect(await subscribe('Bearer not-a-token', query, 'token')).toEqual({ outcome: 'closed', detail: 4403 });
      expect(await subscribe('Bearer not-a-token', query, 'header')).toEqual({ outcome: 'closed', detail: 4403 });
    });
  });

  describe('over SSE (Authorization header)', () => {
    it('refuses a stream without a token with 401, and streams with one', async () => {
      const refused = await fetch(`${gateway.url}/graphql/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: 'subscription { completionStream(input: {prompt: "sse", thinking: false}) { delta } }' }),
      });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer');
      await refused.text();

      const bearer = await token({ scope: 'completions:stream' });
      const client = createSseClient({ url: `${gateway.url}/graphql/stream`, retryAttempts: 0, headers: { authorization: `Bearer ${bearer}` } });
      try {
        const deltas: string[] = [];
        for await (const result of client.iterate<{ completionStream: { delta: string } }>({
          query: 'subscription { completionStream(input: {prompt: "sse", thinking: false}) { delta } }',
        })) {
          deltas.push(result.data!.completionStream.delta);
        }
        expect(deltas.join('').length).toBeGreaterThan(0);
      } finally {
        client.dispose();
      }
    });
  });
});

describe('a JWKS endpoint that hangs', () => {
  let hanging: Server;
  beforeAll(async () => {
    hanging = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    hanging.closeAllConnections();
    await new Promise((resolve) => hanging.close(resolve));
  });

  it('gets a typed 401 within AUTH_JWKS_TIMEOUT_MS, never a 500 or a hang', async () => {
    const { port } = hanging.address() as { port: number };
    const gateway = await startTestGateway({
      AUTH_MODE: 'jwt',
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
      AUTH_JWKS_TIMEOUT_MS: '300',
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
    });
    try {
      // An RS256-shaped token: the gateway must fetch keys to check it.
      const header = Buffer.from('{"alg":"RS256","kid":"k1","typ":"JWT"}').toString('base64url');
      const payload = Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: 9999999999 })).toString('base64url');
      const res = await gql(gateway, '{ __typename }', undefined, { headers: { authorization: `Bearer ${header}.${payload}.c2ln` } });
      expect(res.status).toBe(401);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'signing keys unavailable' });
    } finally {
      await gateway.close();
    }
  });
});
