import type { JSONWebKeySet, JWK } from 'jose';
import { request, type Dispatcher } from 'undici';

/** Largest JWKS document read: real ones are a few KiB; a bigger body is junk or an attack. */
export const MAX_JWKS_BYTES = 1024 * 1024;
/** Most keys kept from one document. */
const MAX_JWKS_KEYS = 100;
/** Key types that can verify the JWKS algorithms (no `oct`: a published secret is no secret). */
const SIGNING_KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);

export interface FetchJwksOptions {
  /** Aborts when the fetch's time is up; the fetcher must stop reading then. */
  signal: AbortSignal;
  /** Reject a body larger than this. */
  maxBytes: number;
}

/** Fetches a JWKS URL and resolves its body parsed as JSON; rejects on anything else. */
export type FetchJwks = (url: string, options: FetchJwksOptions) => Promise<unknown>;

/** Why one JWKS fetch failed, in words safe to log (no body, no header value). */
export class JwksFetchError extends Error {
  constructor(readonly problem: string) {
    super(`JWKS fetch failed: ${problem}`);
    this.name = 'JwksFetchError';
  }
}

/** The default fetcher: one GET through `dispatcher`, 200 only, no redirects, body capped. */
export function undiciJwksFetcher(dispatcher: Dispatcher): FetchJwks {
  return async (url, { signal, maxBytes }) => {
    const response = await request(url, {
      method: 'GET',
      dispatcher,
      signal,
      headers: { accept: 'application/jwk-set+json, application/json' },
    });
    const { body } = response;
    if (response.statusCode !== 200) {
      await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      throw new JwksFetchError(`status ${response.statusCode}`);
    }
    if (Number(response.headers['content-length']) > maxBytes) {
      body.destroy();
      throw new JwksFetchError('body too large');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      // A chunked body has no length to check up front: stop reading at the cap.
      if (size > maxBytes) {
        body.destroy();
        throw new JwksFetchError('body too large');
      }
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
      throw new JwksFetchError('body is not JSON');
    }
  };
}

/**
 * The signing keys of a JWKS document: `{ "keys": [...] }` and nothing else. Keys that
 * cannot verify a token (another type, `use` other than `sig`, private members) are
 * dropped; a document with no usable key is refused, so a broken publication never
 * replaces a good set.
 */
export function signingKeys(document: unknown): JSONWebKeySet {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { keys?: unknown }).keys)) {
    throw new JwksFetchError('body is not a JWKS ({"keys": [...]})');
  }
  const keys = ((document as { keys: unknown[] }).keys).filter(isSigningKey).slice(0, MAX_JWKS_KEYS);
  if (keys.length === 0) throw new JwksFetchError('JWKS has no usable signing key');
  return { keys };
}

function isSigningKey(value: unknown): value is JWK {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const key = value as JWK;
  return (
    typeof key.kty === 'string' &&
    SIGNING_KEY_TYPES.has(key.kty) &&
    (key.use === undefined || key.use === 'sig') &&
    key.d === undefined &&
    (key.kid === undefined || typeof key.kid === 'string')
  );
}

/** A fetch failure in words safe to log. */
export function describeFetchFailure(error: unknown): string {
  if (error instanceof JwksFetchError) return error.problem;
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${error.name} (${code})` : error.name;
  }
  return 'unknown failure';
}
