/**
 * What a bearer token costs the gateway per request: a verification-cache hit (a token
 * seen before: SHA-256 of the token plus an LRU lookup) against a full verification (jose:
 * signature, claims) for each key source, and a remembered refusal (a repeated forgery).
 * In-process, sequential `await authenticate(...)`, after a warm-up; prints µs per call
 * (median of 5 rounds, and the best round).
 *
 *   npx tsx bench/auth-verify.ts            # about 20 s
 *   npx tsx bench/auth-verify.ts --quick    # fewer calls, about 8 s
 */
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, SignJWT, type KeyLike } from 'jose';
import { createAuthenticator, type Authenticator } from '../src/auth';
import type { Config } from '../src/config';
import { silentLogger } from '../src/telemetry/logger';

type JwtAuthConfig = Extract<Config['auth'], { mode: 'jwt' }>;

const QUICK = process.argv.includes('--quick');
const ROUNDS = 5;
const HITS_PER_ROUND = QUICK ? 20_000 : 100_000;
const ISSUER = 'urn:bench:issuer';
const AUDIENCE = 'deepseek-gateway';
const SECRET = new TextEncoder().encode('bench-secret-bench-secret-bench-secret-0123');

function config(keys: JwtAuthConfig['keys']): JwtAuthConfig {
  return {
    mode: 'jwt',
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceS: 30,
    scopesClaim: 'scope',
    tenantClaim: 'tenant',
    jwksTimeoutMs: 3_000,
    jwksMaxAgeMs: 600_000,
  };
}

async function tokens(count: number, alg: string, key: KeyLike | Uint8Array, kid?: string): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const out: string[] = [];
  for (let i = 0; i < count; i += 1) {
    out.push(
      await new SignJWT({ scope: 'completions:read completions:stream', tenant: 'acme' })
        .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(`user-${i}`)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(key),
    );
  }
  return out;
}

/** µs per call of `authenticate` over `headers`, in order. */
async function timePerCall(auth: Authenticator, headers: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  for (const authorization of headers) {
    await auth.authenticate({ authorization, address: '127.0.0.1' }).catch(() => undefined);
  }
  return Number(process.hrtime.bigint() - started) / 1_000 / headers.length;
}

interface Row {
  case: string;
  median: number;
  best: number;
  calls: number;
}

async function measure(name: string, auth: Authenticator, rounds: string[][], warmUp: string[]): Promise<Row> {
  await timePerCall(auth, warmUp);
  const results: number[] = [];
  for (const round of rounds) results.push(await timePerCall(auth, round));
  results.sort((a, b) => a - b);
  return { case: name, median: results[Math.floor(results.length / 2)]!, best: results[0]!, calls: rounds.reduce((n, r) => n + r.length, 0) };
}

/** The cache-hit, full-verification and refused-hit rows for one key source. */
async function source(label: string, auth: Authenticator, signed: string[], forged: string, fullPerRound: number): Promise<Row[]> {
  const bearer = signed.map((token) => `Bearer ${token}`);
  const warm = bearer.slice(0, fullPerRound);
  const fresh = Array.from({ length: ROUNDS }, (_, r) => bearer.slice(fullPerRound * (r + 1), fullPerRound * (r + 2)));
  const full = await measure(`${label}: full verification (new token)`, auth, fresh, warm);
  // The token verified last: still in the cache whatever its bound.
  const seen = fresh[ROUNDS - 1]!.at(-1)!;
  const verificationsBefore = auth.stats().verifications;
  const hit = await measure(
    `${label}: cache hit (token seen before)`,
    auth,
    Array.from({ length: ROUNDS }, () => Array<string>(HITS_PER_ROUND).fill(seen)),
    Array<string>(10_000).fill(seen),
  );
  if (auth.stats().verifications !== verificationsBefore) throw new Error('a cache-hit round ran a verification');
  const refused = await measure(
    `${label}: refused, remembered (repeated forgery)`,
    auth,
    Array.from({ length: ROUNDS }, () => Array<string>(HITS_PER_ROUND / 5).fill(`Bearer ${forged}`)),
    Array<string>(2_000).fill(`Bearer ${forged}`),
  );
  return [full, hit, refused];
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const logger = silentLogger();

  // HS256, shared secret.
  const hsFull = QUICK ? 2_000 : 10_000;
  const hs = createAuthenticator(config({ kind: 'secret', secret: SECRET }), { logger });
  const hsForged = (await tokens(1, 'HS256', new TextEncoder().encode('another-secret-another-secret-another-secret')))[0]!;
  rows.push(...(await source('HS256 secret', hs, await tokens(hsFull * (ROUNDS + 1), 'HS256', SECRET), hsForged, hsFull)));

  // RS256, PEM public key (RSA 2048).
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsFull = QUICK ? 200 : 1_000;
  const rs = createAuthenticator(config({ kind: 'public-key', pem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() }), { logger });
  const rsOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsForged = (await tokens(1, 'RS256', rsOther.privateKey))[0]!;
  rows.push(...(await source('RS256 PEM', rs, await tokens(rsFull * (ROUNDS + 1), 'RS256', rsa.privateKey), rsForged, rsFull)));

  // ES256 from a JWKS (fetched once, through the injected fetcher: no network in the timings).
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  const esFull = QUICK ? 500 : 2_000;
  const es = createAuthenticator(config({ kind: 'jwks', url: 'https://idp.bench/jwks' }), { logger, fetchJwks: () => Promise.resolve({ keys: [jwk] }) });
  const esOther = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const esForged = (await tokens(1, 'ES256', esOther.privateKey, 'bench'))[0]!;
  rows.push(...(await source('ES256 JWKS', es, await tokens(esFull * (ROUNDS + 1), 'ES256', ec.privateKey, 'bench'), esForged, esFull)));

  console.log(`node ${process.version}, ${ROUNDS} rounds per case; µs per authenticate() call, sequential, after warm-up\n`);
  const width = Math.max(...rows.map((row) => row.case.length));
  console.log(`${'case'.padEnd(width)}  median µs  best µs   calls`);
  for (const row of rows) {
    console.log(`${row.case.padEnd(width)}  ${row.median.toFixed(2).padStart(9)}  ${row.best.toFixed(2).padStart(7)}  ${String(row.calls).padStart(7)}`);
  }
  await Promise.all([hs.close(), rs.close(), es.close()]);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
