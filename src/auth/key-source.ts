import { createPublicKey, type KeyObject } from 'node:crypto';
import type { AuthKeySource } from '../config/auth';

/**
 * Algorithms a token may name, per key source. An explicit list per source is what stops
 * `alg: none` and algorithm confusion (an HS256 token whose "secret" is the public key's
 * PEM text): jose refuses any other `alg` before it looks for a key.
 */
export const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const SECRET_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const RSA_PSS_ALGORITHMS = ['PS256', 'PS384', 'PS512'];
const EC_ALGORITHM_BY_CURVE: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/** A key fixed by the configuration, with the algorithms it may verify. */
export interface StaticKey {
  key: KeyObject | Uint8Array;
  algorithms: string[];
}

/**
 * The key and algorithm allow-list of a PEM public key or a shared secret. Throws at
 * start-up for a PEM jose cannot use (the message names the key type, never the key).
 */
export function staticKey(source: Exclude<AuthKeySource, { kind: 'jwks' }>): StaticKey {
  if (source.kind === 'secret') return { key: source.secret, algorithms: [...SECRET_ALGORITHMS] };
  let key: KeyObject;
  try {
    key = createPublicKey(source.pem);
  } catch {
    throw new Error('AUTH_PUBLIC_KEY_FILE: not a PEM public key this runtime can read');
  }
  return { key, algorithms: algorithmsOf(key) };
}

function algorithmsOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA_ALGORITHMS;
    case 'rsa-pss':
      return RSA_PSS_ALGORITHMS;
    case 'ec': {
      const alg = EC_ALGORITHM_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (alg) return [alg];
      break;
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA'];
  }
  throw new Error(
    `AUTH_PUBLIC_KEY_FILE: unsupported key type ${key.asymmetricKeyType ?? 'unknown'} (expected RSA, RSA-PSS, EC P-256/P-384/P-521, Ed25519 or Ed448)`,
  );
}
