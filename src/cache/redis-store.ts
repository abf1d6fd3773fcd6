import KeyvRedis, { createClient } from '@keyv/redis';
import { Keyv } from 'keyv';
import type { Logger } from '../telemetry/logger';
import { withTimeout } from '../lib/abort';
import type { CacheStore } from './store';

const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 1_000;

/** Exponential backoff with jitter, capped at 2 s, and never giving up (see below). */
function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** retries, 2_000) + Math.floor(Math.random() * 100);
}

/**
 * The shared store for several replicas: keyv over @keyv/redis on a client this module owns.
 *
 * Behaviours that matter, checked against @keyv/redis 5.1.6 / @redis/client 5:
 * - Keys are `<namespace>:<completion id>`. keyv's own prefixing is off (`useKeyPrefix:
 *   false`) and only the adapter prefixes: with both on, keys read `ns::ns:key`.
 * - Every write is `SET key value PX ttl` (inside one MULTI for setMany), so Redis expires
 *   entries itself; reads are one MGET.
 * - The client is created, listened to and connected here, not by the adapter: an `error`
 *   event without a listener would crash the process, and the adapter's lazy connect would
 *   make the first call wait for a connection that may never come.
 * - `disableOfflineQueue`: while the connection is down, commands fail at once
 *   (ClientOfflineError) instead of piling up in memory until Redis is back; the cache
 *   turns that into misses (fail open). The reconnect strategy never gives up, so the
 *   client stays "open" and the cache uses Redis again by itself once it answers.
 * - A connection that is up but silent (Redis paused, packets dropped) is not detected by
 *   the client; the completion cache bounds every call with `storeTimeoutMs` for that.
 * - `throwOnErrors` on both keyv and the adapter: failures reach the completion cache,
 *   which counts and logs them, instead of being turned into silent misses.
 */
export function createRedisStore(options: { url: string; namespace: string; logger: Logger }): CacheStore {
  const { logger } = options;
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
  });

  let firstAttemptDone: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    firstAttemptDone = resolve;
  });

  // Socket errors repeat on every reconnect attempt: warn once per outage, then stay quiet.
  let connected = false;
  let closed = false;
  client.on('error', (error: Error) => {
    firstAttemptDone();
    if (connected) logger.warn({ err: error }, 'redis cache connection lost; reconnecting');
    else logger.debug({ err: error }, 'redis cache connection attempt failed');
    connected = false;
  });
  client.on('ready', () => {
    firstAttemptDone();
    connected = true;
    logger.info('redis cache connected');
  });
  // Resolves once the first connection is ready; until then commands fail fast (offline).
  client.connect().catch((error: unknown) => {
    if (!closed) logger.warn({ err: error }, 'redis cache client stopped connecting');
  });

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
    close: async () => {
      if (closed) return;
      closed = true;
      firstAttemptDone();
      if (client.isReady) {
        // Lets queued replies arrive, but never waits long for a server that stopped answering.
        await withTimeout(client.close(), CLOSE_TIMEOUT_MS).catch(() => undefined);
      }
      if (client.isOpen) client.destroy();
    },
  };
}
