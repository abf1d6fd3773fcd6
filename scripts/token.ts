/**
 * Mints a development bearer token (HS256) against the development secret in
 * `.dev/auth-secret`, creating that secret (48 random bytes, mode 0600) the first time.
 *
 *   npm run -s token -- --scope "completions:read completions:stream" [--tenant acme] [--sub dev-user] [--ttl 3600]
 *
 * The token goes to stdout (so `TOKEN=$(npm run -s token -- …)` captures it); how to start
 * the gateway with the matching settings, and how to send the token, go to stderr. For
 * development only: production tokens come from a real issuer (AUTH_JWKS_URL).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { SCOPES } from '../src/auth/caller';
import { TENANT_PATTERN } from '../src/auth/claims';

export const DEV_SECRET_PATH = '.dev/auth-secret';
export const DEV_ISSUER = 'urn:deepseek-gateway:dev';
export const DEV_AUDIENCE = 'deepseek-gateway';
const DEFAULT_SUBJECT = 'dev-user';
const DEFAULT_TTL_S = 3600;
const MAX_TTL_S = 30 * 24 * 3600;

const USAGE = `usage: npm run -s token -- --scope "<scopes>" [--tenant <tenant>] [--sub <subject>] [--ttl <seconds>]
  --scope   space-separated, from: ${Object.values(SCOPES).join(' ')}
  --tenant  1-64 of A-Z a-z 0-9 . _ : - (default: no tenant claim, i.e. tenant "default")
  --sub     the subject (default: ${DEFAULT_SUBJECT})
  --ttl     lifetime in seconds, 1 to ${MAX_TTL_S} (default: ${DEFAULT_TTL_S})`;

export interface TokenIo {
  /** Where `.dev/auth-secret` lives (the repository root under `npm run`). */
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** ms since the epoch (tests). */
  now?: () => number;
}

interface TokenRequest {
  scopes: string[];
  tenant?: string;
  subject: string;
  ttlS: number;
}

class UsageError extends Error {}

/** Runs the command; resolves the exit code (0 done, 1 the secret is unusable, 2 bad arguments). */
export async function main(argv: string[], io: TokenIo): Promise<number> {
  let request: TokenRequest | 'help';
  try {
    request = parseRequest(argv);
  } catch (error) {
    if (!(error instanceof UsageError) && !isParseArgsError(error)) throw error;
    io.stderr(`token: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (request === 'help') {
    io.stderr(`${USAGE}\n`);
    return 0;
  }

  const secret = developmentSecret(io);
  if (secret === undefined) return 1;
  const iat = Math.floor((io.now ?? Date.now)() / 1000);
  const token = await new SignJWT({ scope: request.scopes.join(' '), ...(request.tenant ? { tenant: request.tenant } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(request.subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + request.ttlS)
    .sign(secret);

  io.stdout(`${token}\n`);
  io.stderr(
    [
      `Development token: sub=${request.subject}, tenant=${request.tenant ?? 'default'}, scopes "${request.scopes.join(' ')}",` +
        ` expires ${new Date((iat + request.ttlS) * 1000).toISOString()}.`,
      'Start the gateway with:',
      `  AUTH_MODE=jwt AUTH_SECRET_FILE=${DEV_SECRET_PATH} AUTH_ISSUER=${DEV_ISSUER} AUTH_AUDIENCE=${DEV_AUDIENCE} npm start`,
      'Send the token as:',
      '  Authorization: Bearer <token>',
      `e.g. TOKEN=$(npm run -s token -- --scope "${request.scopes.join(' ')}")`,
      `     curl -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"query":"{ __typename }"}' http://localhost:4000/graphql`,
      '',
    ].join('\n'),
  );
  return 0;
}

function parseRequest(argv: string[]): TokenRequest | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      scope: { type: 'string' },
      tenant: { type: 'string' },
      sub: { type: 'string' },
      ttl: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  if (values.scope === undefined) throw new UsageError('--scope is required (for example --scope "completions:read completions:stream")');
  const scopes = values.scope.split(' ').filter((scope) => scope.length > 0);
  if (scopes.length === 0) throw new UsageError('--scope names no scope');
  const known = new Set<string>(Object.values(SCOPES));
  const unknown = scopes.filter((scope) => !known.has(scope));
  if (unknown.length > 0) throw new UsageError(`unknown scope ${unknown.map((s) => JSON.stringify(s)).join(', ')}`);
  if (values.tenant !== undefined && !TENANT_PATTERN.test(values.tenant)) {
    throw new UsageError('--tenant must be 1 to 64 of A-Z a-z 0-9 . _ : -');
  }
  const subject = values.sub ?? DEFAULT_SUBJECT;
  if (!/^[\x21-\x7e]{1,256}$/.test(subject)) throw new UsageError('--sub must be 1 to 256 printable characters without spaces');
  const ttlS = values.ttl === undefined ? DEFAULT_TTL_S : Number(values.ttl);
  if (!/^\d+$/.test(values.ttl ?? '1') || ttlS < 1 || ttlS > MAX_TTL_S) throw new UsageError(`--ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}`);
  return { scopes: [...new Set(scopes)], tenant: values.tenant, subject, ttlS };
}

/** node:util parseArgs's own complaints (unknown option, missing value), by code: not `instanceof`, which fails across realms. */
function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/**
 * The secret as the gateway will read it (AUTH_SECRET_FILE: the file's text, trimmed, as
 * UTF-8). Created as 48 random bytes written base64url (64 characters), so the text holds
 * all of them and survives the trim.
 */
function developmentSecret(io: TokenIo): Uint8Array | undefined {
  const path = join(io.cwd, DEV_SECRET_PATH);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // `wx`: never overwrite a secret that tokens in use were signed with.
    writeFileSync(path, `${randomBytes(48).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    io.stderr(`Created ${DEV_SECRET_PATH} (48 random bytes, mode 0600).\n`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if ((statSync(path).mode & 0o077) !== 0) io.stderr(`Warning: ${DEV_SECRET_PATH} is readable by other users; chmod 600 it.\n`);
  const secret = readFileSync(path, 'utf8').trim();
  if (Buffer.byteLength(secret) < 32) {
    io.stderr(`token: ${DEV_SECRET_PATH} holds fewer than 32 bytes, which the gateway refuses; delete it to have a new one made.\n`);
    return undefined;
  }
  return new TextEncoder().encode(secret);
}

if (require.main === module) {
  main(process.argv.slice(2), {
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`token: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
