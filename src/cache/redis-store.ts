import type * as KeyvRedisModule from '@keyv/redis';
import { Keyv } from 'keyv';
import type { Logger } from '../telemetry/logger';
import { connectRedisClient } from '../lib/redis-client';
import type { CacheStore } from './store';

/**
 * The shared store for several replicas: keyv over @keyv/redis on a client this module owns
 * (`connectRedisClient`: listened to, fails fast while offline, reconnects forever).
 *
 * Behaviours that matter, checked against @keyv/redis 5.1.6 / @redis/client 5:
 * - Keys are `<namespace>:<completion id>`. keyv's own prefixing is off (`useKeyPrefix:
 *   false`) and only the adapter prefixes: with both on, keys read `ns::ns:key`.
 * - Every write is `SET key value PX ttl` (inside one MULTI for setMany), so Redis expires
 *   entries itself; reads are one MGET.
 * - The client is created and connected here, not by the adapter: the adapter's lazy
 *   connect would make the first call wait for a connection that may never come.
 * - While the connection is down commands fail at once; the cache turns that into misses
 *   (fail open), and uses Redis again by itself once it answers.
 * - A connection that is up but silent is not detected by the client; the completion cache
 *   bounds every call with `storeTimeoutMs` for that.
 * - `throwOnErrors` on both keyv and the adapter: failures reach the completion cache,
 *   which counts and logs them, instead of being turned into silent misses.
 */
export function createRedisStore(options: { url: string; namespace: string; logger: Logger }): CacheStore {
  const { client, ready, close } = connectRedisClient({ url: options.url, logger: options.logger, name: 'cache' });

  // Loaded here, not at start-up (see newClient in src/lib/redis-client.ts).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { default: KeyvRedis } = require('@keyv/redis') as typeof KeyvRedisModule;
  const adapter = new KeyvRedis<string>(client, {
    namespace: options.namespace,
    keyPrefixSeparator: ':',
    throwOnErrors: true,
    throwOnConnectError: true,
  });
  const keyv = new Keyv(adapter, { namespace: options.namespace, useKeyPrefix: false, throwOnErrors: true });
  // keyv re-emits every adapter error; the completion cache reports failures itself.
  keyv.on('error', () => undefined);

  return {
    kind: 'redis',
    keyv,
    ready,
    entries: () => null,
    close,
  };
}
