import type * as KeyvRedisModule from '@keyv/redis';
import type { Logger } from '../telemetry/logger';
import { withTimeout } from './abort';

const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 1_000;

/** Exponential backoff with jitter, capped at 2 s, and never giving up (see below). */
function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** retries, 2_000) + Math.floor(Math.random() * 100);
}

// Loaded on first use, not at start-up: a gateway without REDIS_URL never loads node-redis
// (@redis/client is over 400 modules, about 15 MB of RSS). `require`, not `import()`: see the
// simulator's loading in src/app.ts.
function newClient(url: string) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createClient } = require('@keyv/redis') as typeof KeyvRedisModule;
  return createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay },
  });
}

export type RedisClient = ReturnType<typeof newClient>;

/** A node-redis client owned by one part of the gateway (the cache, the quota counters). */
export interface OwnedRedisClient {
  client: RedisClient;
  /** Settles once the first connection attempt has succeeded or failed (never rejects). */
  ready: Promise<void>;
  /** Lets queued replies arrive for at most a second, then drops the connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates, listens to and connects a node-redis client (checked against @redis/client 5):
 * - an `error` listener is attached at once: an `error` event without one would crash the
 *   process; socket errors repeat on every reconnect attempt, so they are warned once per
 *   outage, then stay quiet;
 * - `disableOfflineQueue`: while the connection is down, commands fail at once
 *   (ClientOfflineError) instead of piling up in memory until Redis is back;
 * - the reconnect strategy never gives up, so the client stays "open" and its owner uses
 *   Redis again by itself once it answers;
 * - a connection that is up but silent (Redis paused, packets dropped) is not detected by
 *   the client: owners bound every call with a timeout of their own.
 * `name` says whose client it is in the log lines.
 */
export function connectRedisClient(options: { url: string; logger: Logger; name: string }): OwnedRedisClient {
  const { logger, name } = options;
  const client = newClient(options.url);

  let firstAttemptDone: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    firstAttemptDone = resolve;
  });

  let connected = false;
  let closed = false;
  client.on('error', (error: Error) => {
    firstAttemptDone();
    if (connected) logger.warn({ err: error }, `redis ${name} connection lost; reconnecting`);
    else logger.debug({ err: error }, `redis ${name} connection attempt failed`);
    connected = false;
  });
  client.on('ready', () => {
    firstAttemptDone();
    connected = true;
    logger.info(`redis ${name} connected`);
  });
  // Resolves once the first connection is ready; until then commands fail fast (offline).
  client.connect().catch((error: unknown) => {
    if (!closed) logger.warn({ err: error }, `redis ${name} client stopped connecting`);
  });

  return {
    client,
    ready,
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
