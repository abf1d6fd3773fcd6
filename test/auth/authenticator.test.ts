import { generateKeyPairSync } from 'node:crypto';
import { base64url, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createAuthenticator, SCOPES, type Authenticator } from '../../src/auth';
import { UnauthenticatedError, type UnauthenticatedReason } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { AUDIENCE, capturingLogger, Clock, ISSUER, jwtConfig, mint, SECRET, T0, type JwtAuthConfig } from './fixtures';

const ADDRESS = '203.0.113.7';

function secretAuthenticator(clock = new Clock(), overrides: Partial<JwtAuthConfig> = {}, logger = silentLogger()): Authenticator {
  return createAuthenticator(jwtConfig({ kind: 'secret', secret: SECRET }, overrides), { logger, now: clock.now });
}

/** The reason a header is refused with (fails the test if it is accepted). */
async function refusal(auth: Authenticator, authorization: string): Promise<UnauthenticatedReason> {
  const error: unknown = await auth.authenticate({ authorization, address: ADDRESS }).then(
    () => new Error('accepted'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof UnauthenticatedError)) throw error;
  return error.reason;
}

const bearer = (token: string): string => `Bearer ${token}`;

describe('createAuthenticator, AUTH_MODE=none', () => {
  it('makes every caller anonymous with every scope, whatever the header', async () => {
    const auth = createAuthenticator({ mode: 'none' }, { logger: silentLogger() });
    const caller = await auth.authenticate({ authorization: 'Basic Zm9vOmJhcg==', address: ADDRESS });
    expect(caller).toMatchObject({ kind: 'anonymous', subject: ADDRESS, tenant: 'default' });
    expect([...caller.scopes].sort()).toEqual(Object.values(SCOPES).sort());
  });
});

describe('createAuthenticator, shared secret (HS256)', () => {
  it('gives a caller without a header no scopes, tenant default', async () => {
    const caller = await secretAuthenticator().authenticate({ address: ADDRESS });
    expect(caller).toMatchObject({ kind: 'unauthenticated', subject: ADDRESS, tenant: 'default' });
    expect(caller.scopes.size).toBe(0);
  });

  it('turns a good token into a caller: subject, tenant, scopes from a space-separated string, expiry', async () => {
    const token = await mint(SECRET, { subject: 'alice', claims: { tenant: 'acme', scope: 'completions:read  completions:stream' } });
    const caller = await secretAuthenticator().authenticate({ authorization: bearer(token), address: ADDRESS });
    expect(caller).toMatchObject({ kind: 'token', subject: 'alice', tenant: 'acme', expiresAt: T0 + 3600_000 });
    expect([...caller.scopes]).toEqual(['completions:read', 'completions:stream']);
  });

  it('reads scopes from an array claim (scp) and puts a tenant-less token in tenant default', async () => {
    const token = await mint(SECRET, { claims: { scope: undefined, scp: ['completions:write', 'gateway:admin'] } });
    const caller = await secretAuthenticator(new Clock(), { scopesClaim: 'scp' }).authenticate({ authorization: bearer(token), address: ADDRESS });
    expect(caller.tenant).toBe('default');
    expect([...caller.scopes]).toEqual(['completions:write', 'gateway:admin']);
  });

  it('accepts the scheme in any case', async () => {
    const token = await mint(SECRET);
    await expect(secretAuthenticator().authenticate({ authorization: `bEARER ${token}`, address: ADDRESS })).resolves.toMatchObject({ kind: 'token' });
  });

  it('refuses a forged signature', async () => {
    const token = await mint(new TextEncoder().encode('another-secret-of-more-than-thirty-two-bytes'));
    expect(await refusal(secretAuthenticator(), bearer(token))).toBe('bad signature');
  });

  it('refuses another audience and another issuer', async () => {
    const auth = secretAuthenticator();
    expect(await refusal(auth, bearer(await mint(SECRET, { audience: 'another-service' })))).toBe('wrong audience');
    expect(await refusal(auth, bearer(await mint(SECRET, { issuer: 'https://evil.test/' })))).toBe('wrong issuer');
  });

  it('refuses an expired token, but not within the clock tolerance', async () => {
    const clock = new Clock();
    const auth = secretAuthenticator(clock);
    // exp = T0 - 20 s: inside the 30 s tolerance.
    const lately = await mint(SECRET, { iat: T0 / 1000 - 3620, ttlS: 3600 });
    await expect(auth.authenticate({ authorization: bearer(lately), address: ADDRESS })).resolves.toMatchObject({ kind: 'token' });
    // exp = T0 - 31 s: outside it.
    const expired = await mint(SECRET, { iat: T0 / 1000 - 3631, ttlS: 3600 });
    expect(await refusal(auth, bearer(expired))).toBe('expired');
  });

  it('refuses a token that is not yet valid (nbf beyond the tolerance), accepts it once it is', async () => {
    const clock = new Clock();
    const auth = secretAuthenticator(clock);
    const token = await mint(SECRET, { nbf: T0 / 1000 + 60 });
    expect(await refusal(auth, bearer(token))).toBe('not yet valid');
    clock.advance(31_000); // nbf is now 29 s ahead: within the tolerance
    await expect(auth.authenticate({ authorization: bearer(token), address: ADDRESS })).resolves.toMatchObject({ kind: 'token' });
  });

  it('refuses a token without exp or without sub', async () => {
    const auth = secretAuthenticator();
    expect(await refusal(auth, bearer(await mint(SECRET, { subject: null })))).toBe('missing claim');
    const noExp = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .sign(SECRET);
    expect(await refusal(auth, bearer(noExp))).toBe('missing claim');
  });

  it('refuses alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: T0 / 1000 + 600 }));
    expect(await refusal(secretAuthenticator(), bearer(`${header}.${payload}.`))).toBe('algorithm not allowed');
  });

  it('refuses an RS256 token when the key is a shared secret', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    expect(await refusal(secretAuthenticator(), bearer(await mint(privateKey, { alg: 'RS256' })))).toBe('algorithm not allowed');
  });

  it('refuses a token over 8 KiB without verifying it', async () => {
    const auth = secretAuthenticator();
    const token = await mint(SECRET, { claims: { padding: 'x'.repeat(8 * 1024) } });
    expect(await refusal(auth, bearer(token))).toBe('token too large');
    expect(await refusal(auth, bearer('a'.repeat(64 * 1024)))).toBe('token too large');
    expect(auth.stats().verifications).toBe(0);
  });

  it('refuses a header that is not Bearer <token>', async () => {
    const auth = secretAuthenticator();
    const token = await mint(SECRET);
    for (const header of [`Basic ${Buffer.from('user:pass').toString('base64')}`, token, 'Bearer', 'Bearer ', `Bearer ${token} extra`, `Token ${token}`, '']) {
      expect(await refusal(auth, header)).toBe('malformed authorization header');
    }
    expect(auth.stats().verifications).toBe(0);
  });

  it('refuses garbage that looks like a token', async () => {
    const auth = secretAuthenticator();
    for (const token of ['abc', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln']) {
      expect(['malformed token', 'bad signature']).toContain(await refusal(auth, bearer(token)));
    }
  });

  it('refuses a malformed tenant or scopes claim', async () => {
    const auth = secretAuthenticator();
    for (const tenant of ['', 'acme corp', 'a'.repeat(65), 'ümlaut', 42, ['acme']]) {
      expect(await refusal(auth, bearer(await mint(SECRET, { claims: { tenant } })))).toBe('malformed tenant claim');
    }
    expect(await refusal(auth, bearer(await mint(SECRET, { claims: { scope: ['ok', 7] } })))).toBe('malformed scopes claim');
    expect(await refusal(auth, bearer(await mint(SECRET, { claims: { scope: { read: true } } })))).toBe('malformed scopes claim');
  });

  it('gives every refusal an RFC 6750 challenge', async () => {
    const auth = secretAuthenticator();
    const error = await auth.authenticate({ authorization: bearer(await mint(SECRET, { audience: 'x' })), address: ADDRESS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect(error).toMatchObject({
      code: 'UNAUTHENTICATED',
      httpStatus: 401,
      extensions: { reason: 'wrong audience' },
      wwwAuthenticate: 'Bearer error="invalid_token", error_description="wrong audience"',
    });
    const malformed = await auth.authenticate({ authorization: 'Basic x', address: ADDRESS }).catch((e: unknown) => e);
    expect((malformed as UnauthenticatedError).wwwAuthenticate).toBe('Bearer error="invalid_request", error_description="malformed authorization header"');
  });
});

describe('createAuthenticator, PEM public key', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

  it('verifies RS256 and PS256 tokens signed by the key', async () => {
    const auth = createAuthenticator(jwtConfig({ kind: 'public-key', pem }), { logger: silentLogger(), now: new Clock().now });
    for (const alg of ['RS256', 'PS256']) {
      const caller = await auth.authenticate({ authorization: bearer(await mint(rsa.privateKey, { alg, subject: alg })), address: ADDRESS });
      expect(caller.subject).toBe(alg);
    }
  });

  it('refuses algorithm confusion: an HS256 token whose secret is the public key PEM', async () => {
    const auth = createAuthenticator(jwtConfig({ kind: 'public-key', pem }), { logger: silentLogger(), now: new Clock().now });
    const forged = await mint(new TextEncoder().encode(pem), { alg: 'HS256' });
    expect(await refusal(auth, bearer(forged))).toBe('algorithm not allowed');
  });

  it('allows only its curve for an EC key and EdDSA for an Ed25519 key', async () => {
    const ec = await generateKeyPair('ES384');
    const ecAuth = createAuthenticator(jwtConfig({ kind: 'public-key', pem: await exportSPKI(ec.publicKey) }), { logger: silentLogger(), now: new Clock().now });
    await expect(ecAuth.authenticate({ authorization: bearer(await mint(ec.privateKey, { alg: 'ES384' })), address: ADDRESS })).resolves.toMatchObject({ kind: 'token' });
    expect(await refusal(ecAuth, bearer(await mint(rsa.privateKey, { alg: 'RS256' })))).toBe('algorithm not allowed');

    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const edAuth = createAuthenticator(jwtConfig({ kind: 'public-key', pem: await exportSPKI(ed.publicKey) }), { logger: silentLogger(), now: new Clock().now });
    await expect(edAuth.authenticate({ authorization: bearer(await mint(ed.privateKey, { alg: 'EdDSA' })), address: ADDRESS })).resolves.toMatchObject({ kind: 'token' });
  });

  it('refuses to start with a PEM it cannot use, without echoing it', () => {
    const pemJunk = '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n';
    expect(() => createAuthenticator(jwtConfig({ kind: 'public-key', pem: pemJunk }), { logger: silentLogger() })).toThrow(/AUTH_PUBLIC_KEY_FILE/);
    try {
      createAuthenticator(jwtConfig({ kind: 'public-key', pem: pemJunk }), { logger: silentLogger() });
    } catch (error) {
      expect((error as Error).message).not.toContain('bm90IGEga2V5');
    }
  });
});

describe('the verification cache', () => {
  it('answers a second sight of a token without verifying it again', async () => {
    const auth = secretAuthenticator();
    const token = await mint(SECRET, { claims: { tenant: 'acme' } });
    const first = await auth.authenticate({ authorization: bearer(token), address: ADDRESS });
    const second = await auth.authenticate({ authorization: bearer(token), address: '198.51.100.1' });
    expect(second).toBe(first);
    expect(auth.stats()).toMatchObject({ verifications: 1, cache: { verified: 1, hits: 1 } });
  });

  it('shares one verification between concurrent first sights of a token', async () => {
    const auth = secretAuthenticator();
    const token = await mint(SECRET);
    const callers = await Promise.all(Array.from({ length: 10 }, () => auth.authenticate({ authorization: bearer(token), address: ADDRESS })));
    expect(new Set(callers).size).toBe(1);
    expect(auth.stats().verifications).toBe(1);
  });

  it('refuses a cached token once it expires (exp plus the tolerance), without asking jose', async () => {
    const clock = new Clock();
    const auth = secretAuthenticator(clock);
    const token = await mint(SECRET, { ttlS: 60 });
    await auth.authenticate({ authorization: bearer(token), address: ADDRESS });
    clock.advance(60_000 + 29_999);
    await expect(auth.authenticate({ authorization: bearer(token), address: ADDRESS })).resolves.toMatchObject({ kind: 'token' });
    clock.advance(1);
    expect(await refusal(auth, bearer(token))).toBe('expired');
    expect(await refusal(auth, bearer(token))).toBe('expired');
    expect(auth.stats().verifications).toBe(1);
  });

  it('remembers a refused token for a while, so a flood of one forgery costs one verification', async () => {
    const clock = new Clock();
    const auth = secretAuthenticator(clock);
    const forged = await mint(new TextEncoder().encode('another-secret-of-more-than-thirty-two-bytes'));
    for (let i = 0; i < 100; i += 1) expect(await refusal(auth, bearer(forged))).toBe('bad signature');
    expect(auth.stats()).toMatchObject({ verifications: 1, cache: { refused: 1, refusedHits: 99 }, refusals: { 'bad signature': 100 } });
    clock.advance(30_000);
    expect(await refusal(auth, bearer(forged))).toBe('bad signature');
    expect(auth.stats().verifications).toBe(2);
  });

  it('does not remember a refusal that time can undo (not yet valid)', async () => {
    const auth = secretAuthenticator();
    const token = await mint(SECRET, { nbf: T0 / 1000 + 600 });
    await refusal(auth, bearer(token));
    await refusal(auth, bearer(token));
    expect(auth.stats()).toMatchObject({ verifications: 2, cache: { refused: 0 } });
  });

  it('is bounded: the least recently used token is verified again', async () => {
    const auth = createAuthenticator(jwtConfig({ kind: 'secret', secret: SECRET }), {
      logger: silentLogger(),
      now: new Clock().now,
      limits: { verifiedCacheMax: 3 },
    });
    const tokens = await Promise.all([1, 2, 3, 4].map((n) => mint(SECRET, { subject: `user-${n}` })));
    for (const token of tokens) await auth.authenticate({ authorization: bearer(token), address: ADDRESS });
    expect(auth.stats().cache.verified).toBe(3);
    await auth.authenticate({ authorization: bearer(tokens[0]!), address: ADDRESS });
    expect(auth.stats().verifications).toBe(5);
  });
});

describe('secrets stay out of errors, logs and stats', () => {
  it('never shows a token or a claim value other than the tenant', async () => {
    const { logger, lines } = capturingLogger();
    const clock = new Clock();
    const auth = secretAuthenticator(clock, {}, logger);
    const claims = { sub: 'subject-S3CRET-value', scope: 'scope-S3CRET-value completions:read', tenant: 'acme', email: 'email-S3CRET@example.test' };
    const other = new TextEncoder().encode('another-secret-of-more-than-thirty-two-bytes');
    const tokens = [
      await mint(SECRET, { subject: claims.sub, claims }),
      await mint(other, { subject: claims.sub, claims }),
      await mint(SECRET, { subject: claims.sub, claims, audience: 'aud-S3CRET-value' }),
      await mint(SECRET, { subject: claims.sub, claims, issuer: 'iss-S3CRET-value' }),
      await mint(SECRET, { subject: claims.sub, claims, ttlS: -3600 }),
      await mint(SECRET, { subject: claims.sub, claims, nbf: T0 / 1000 + 3600 }),
      await mint(SECRET, { subject: claims.sub, claims: { ...claims, tenant: 'tenant S3CRET bad' } }),
    ];
    const exposed: string[] = [];
    for (const token of [...tokens, ...tokens]) {
      for (const authorization of [bearer(token), `Basic ${token}`]) {
        await auth.authenticate({ authorization, address: ADDRESS }).then(
          () => undefined,
          (error: UnauthenticatedError) => exposed.push(error.message, error.stack ?? '', JSON.stringify(error), error.wwwAuthenticate),
        );
      }
    }
    exposed.push(JSON.stringify(auth.stats()), ...lines);
    const text = exposed.join('\n');

    expect(lines.some((line) => line.includes('"reason":"bad signature"'))).toBe(true);
    expect(text).not.toMatch(/S3CRET/);
    for (const token of tokens) {
      for (const part of token.split('.')) expect(text).not.toContain(part);
    }
  });
});
