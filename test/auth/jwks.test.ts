import { createSign, generateKeyPairSync } from 'node:crypto';
import { base64url, exportJWK, type JWK, type KeyLike } from 'jose';
import { createAuthenticator, type Authenticator } from '../../src/auth';
import { UnauthenticatedError, type UnauthenticatedReason } from '../../src/errors';
import type { Logger } from '../../src/telemetry/logger';
import { AUDIENCE, capturingLogger, Clock, ISSUER, jwtConfig, mint, signingKey, T0, type JwtAuthConfig } from './fixtures';
import { JwksServer, type JwksBehaviour } from './jwks-server';

const ADDRESS = '203.0.113.7';
const TIMEOUT_MS = 300;
const MAX_AGE_MS = 600_000;

interface Key {
  kid: string;
  alg: string;
  privateKey: KeyLike;
  jwk: JWK;
}

let server: JwksServer;
let auth: Authenticator | undefined;
let clock: Clock;
let logs: { logger: Logger; lines: string[] };
let keyA: Key;
let keyB: Key;
let serial = 0;

beforeAll(async () => {
  keyA = await signingKey('key-a');
  keyB = await signingKey('key-b', 'RS256');
});

beforeEach(async () => {
  server = await JwksServer.start([keyA.jwk]);
  clock = new Clock();
  logs = capturingLogger();
});

afterEach(async () => {
  await auth?.close();
  auth = undefined;
  await server.close();
});

function start(overrides: Partial<JwtAuthConfig> = {}): Authenticator {
  auth = createAuthenticator(jwtConfig({ kind: 'jwks', url: server.url }, { jwksTimeoutMs: TIMEOUT_MS, jwksMaxAgeMs: MAX_AGE_MS, ...overrides }), {
    logger: logs.logger,
    now: clock.now,
  });
  return auth;
}

/** A token no cache has seen, signed by `key` and naming `kid` (default: the key's own). */
async function freshToken(key: Key, kid = key.kid): Promise<string> {
  serial += 1;
  return mint(key.privateKey, { alg: key.alg, kid, subject: `user-${serial}` });
}

async function authenticate(token: string): Promise<string> {
  return (await auth!.authenticate({ authorization: `Bearer ${token}`, address: ADDRESS })).subject;
}

async function reasonFor(token: string): Promise<UnauthenticatedReason> {
  const error: unknown = await auth!.authenticate({ authorization: `Bearer ${token}`, address: ADDRESS }).then(
    () => new Error('accepted'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof UnauthenticatedError)) throw error;
  return error.reason;
}

const warnings = (): string[] => logs.lines.filter((line) => line.includes('"level":"warn"'));

describe('JWKS: normal operation', () => {
  it('verifies tokens against the fetched keys, fetching once', async () => {
    server.keys = [keyA.jwk, keyB.jwk];
    start();
    await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
    await expect(authenticate(await freshToken(keyB))).resolves.toMatch(/^user-/);
    expect(server.requests).toBe(1);
    expect(auth!.stats().jwks).toMatchObject({ keys: 2, fetches: 1, failures: 0, failing: false });
  });

  it('refuses an HS256 token (asymmetric algorithms only) and a token signed by a key not in the set', async () => {
    start();
    expect(await reasonFor(await mint(new TextEncoder().encode('a-secret-of-more-than-thirty-two-bytes!!'), { alg: 'HS256', kid: 'key-a' }))).toBe('algorithm not allowed');
    const impostor = await signingKey('key-a');
    expect(await reasonFor(await freshToken(impostor))).toBe('bad signature');
  });

  it('tries each fitting key for a token without kid', async () => {
    const keyC = await signingKey('key-c');
    server.keys = [keyA.jwk, keyC.jwk].map(({ kid: _kid, ...jwk }) => jwk);
    start();
    await expect(authenticate(await mint(keyC.privateKey, { alg: 'ES256' }))).resolves.toBe('user-1');
    const impostor = await signingKey('x');
    expect(await reasonFor(await mint(impostor.privateKey, { alg: 'ES256' }))).toBe('bad signature');
  });

  it('refetches a set older than the max age in the background, serving the old set meanwhile', async () => {
    start();
    await authenticate(await freshToken(keyA));
    clock.advance(MAX_AGE_MS);
    server.behaviour = 'hang';
    // Answered from the old set while the refetch hangs.
    await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
    await server.receivedRequests(2);
    await auth!.idle();
    expect(auth!.stats().jwks).toMatchObject({ fetches: 2, failures: 1, failing: true });
  });
  it('refuses, warning once, tokens for a published key jose will not use (RSA under 2048 bits)', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    server.keys = [{ ...(await exportJWK(weak.publicKey)), kid: 'weak', alg: 'RS256', use: 'sig' }];
    start();
    // Signed by hand: jose will not sign with such a key either.
    const sign = (sub: string): string => {
      const header = base64url.encode(JSON.stringify({ alg: 'RS256', kid: 'weak' }));
      const payload = base64url.encode(JSON.stringify({ sub, iss: ISSUER, aud: AUDIENCE, exp: T0 / 1000 + 600 }));
      const signature = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(weak.privateKey);
      return `${header}.${payload}.${base64url.encode(signature)}`;
    };
    expect(await reasonFor(sign('w1'))).toBe('malformed token');
    expect(await reasonFor(sign('w2'))).toBe('malformed token');
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain('"errorName":"TypeError"');
  });
});

describe('JWKS: unknown kid', () => {
  it('refetches once when a token names an unknown kid, concurrent tokens sharing the fetch', async () => {
    start();
    await authenticate(await freshToken(keyA));
    server.keys = [keyA.jwk, keyB.jwk]; // the issuer rotates in key-b
    const tokens = await Promise.all(Array.from({ length: 5 }, () => freshToken(keyB)));
    const subjects = await Promise.all(tokens.map(authenticate));
    expect(subjects).toHaveLength(5);
    expect(server.requests).toBe(2);
  });

  it('refetches for unknown kids at most once per cool-down', async () => {
    start();
    await authenticate(await freshToken(keyA));
    expect(await reasonFor(await freshToken(keyA, 'made-up-1'))).toBe('unknown signing key');
    expect(server.requests).toBe(2);
    clock.advance(29_999);
    expect(await reasonFor(await freshToken(keyA, 'made-up-2'))).toBe('unknown signing key');
    expect(server.requests).toBe(2);
    clock.advance(1);
    server.keys = [keyA.jwk, keyB.jwk];
    await expect(authenticate(await freshToken(keyB))).resolves.toMatch(/^user-/);
    expect(server.requests).toBe(3);
  });

  it('stops accepting a withdrawn key once a new set is fetched, cached tokens included', async () => {
    start();
    const old = await freshToken(keyA);
    await authenticate(old);
    server.keys = [keyB.jwk]; // key-a withdrawn
    await authenticate(await freshToken(keyB));
    expect(await reasonFor(old)).toBe('unknown signing key');
  });
});

describe('JWKS: endpoint failures', () => {
  it('fails with "signing keys unavailable" within the timeout when the endpoint hangs and no set was ever fetched', async () => {
    server.behaviour = 'hang';
    start();
    const started = Date.now();
    expect(await reasonFor(await freshToken(keyA))).toBe('signing keys unavailable');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_000);
    expect(warnings()).toHaveLength(1);
  });

  it('keeps verifying with the last good set while the endpoint hangs', async () => {
    start();
    await authenticate(await freshToken(keyA));
    server.behaviour = 'hang';
    clock.advance(MAX_AGE_MS);
    await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
    await auth!.idle();
    // An unknown kid waits for its refetch (bounded by the timeout), then is refused.
    expect(await reasonFor(await freshToken(keyB))).toBe('unknown signing key');
    await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
    expect(auth!.stats().jwks).toMatchObject({ keys: 1, fetches: 3, failures: 2, failing: true });
  });

  it.each<JwksBehaviour>(['junk-json', 'html', 'empty-keys', 'secret-key', 'huge-chunked', 'huge-declared', 'status503'])(
    'refuses tokens with "signing keys unavailable" while the only answer is %s',
    async (behaviour) => {
      server.behaviour = behaviour;
      start();
      expect(await reasonFor(await freshToken(keyA))).toBe('signing keys unavailable');
      expect(auth!.stats().jwks).toMatchObject({ keys: 0, failures: 1, failing: true });
    },
  );

  it.each<JwksBehaviour>(['junk-json', 'html', 'empty-keys', 'huge-chunked', 'status503'])(
    'keeps the last good set when a refetch answers %s',
    async (behaviour) => {
      start();
      await authenticate(await freshToken(keyA));
      server.behaviour = behaviour;
      clock.advance(MAX_AGE_MS);
      await authenticate(await freshToken(keyA));
      await auth!.idle();
      await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
      expect(auth!.stats().jwks).toMatchObject({ keys: 1, fetches: 2, failures: 1 });
    },
  );

  it('waits a little before fetching again after a failure with no set', async () => {
    server.behaviour = 'status503';
    start();
    expect(await reasonFor(await freshToken(keyA))).toBe('signing keys unavailable');
    expect(await reasonFor(await freshToken(keyA))).toBe('signing keys unavailable');
    expect(server.requests).toBe(1);
    server.behaviour = 'ok';
    clock.advance(5_000);
    await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
    expect(server.requests).toBe(2);
  });

  it('warns once per outage of an endpoint that went away, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      start();
      await authenticate(await freshToken(keyA));
      await server.close(); // connection refused from now on
      for (let i = 0; i < 3; i += 1) {
        clock.advance(MAX_AGE_MS);
        await expect(authenticate(await freshToken(keyA))).resolves.toMatch(/^user-/);
        await auth!.idle();
      }
      // An unknown kid's refetch fails too, and is answered, not thrown.
      expect(await reasonFor(await freshToken(keyB))).toBe('unknown signing key');
      await new Promise((resolve) => setImmediate(resolve));
      expect(auth!.stats().jwks).toMatchObject({ keys: 1, fetches: 5, failures: 4, failing: true });
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toContain('"jwksUrl":"http://127.0.0.1:');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      server = await JwksServer.start(); // for afterEach
    }
  });

  it('logs recovery after an outage', async () => {
    start();
    await authenticate(await freshToken(keyA));
    server.behaviour = 'status503';
    clock.advance(MAX_AGE_MS);
    await authenticate(await freshToken(keyA));
    await auth!.idle();
    server.behaviour = 'ok';
    clock.advance(MAX_AGE_MS);
    await authenticate(await freshToken(keyA));
    await auth!.idle();
    expect(auth!.stats().jwks).toMatchObject({ failing: false, fetches: 3 });
    expect(logs.lines.filter((line) => line.includes('JWKS fetched again'))).toHaveLength(1);
  });

  it('cuts a hanging fetch on close', async () => {
    server.behaviour = 'hang';
    start();
    const pending = reasonFor(await freshToken(keyA));
    await server.receivedRequests(1);
    await auth!.close();
    expect(await pending).toBe('signing keys unavailable');
  });
});

describe('JWKS: an injected fetcher', () => {
  it('is bounded by the timeout even when it ignores its signal', async () => {
    let calls = 0;
    auth = createAuthenticator(jwtConfig({ kind: 'jwks', url: 'https://idp.test/jwks' }, { jwksTimeoutMs: 100 }), {
      logger: logs.logger,
      now: clock.now,
      fetchJwks: () => {
        calls += 1;
        return new Promise(() => undefined);
      },
    });
    expect(await reasonFor(await freshToken(keyA))).toBe('signing keys unavailable');
    expect(calls).toBe(1);
  });
});
