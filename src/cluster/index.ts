import type { ClusterConfig } from '../config';
import type { CompletionCache } from '../cache/completion-cache';
import { connectRedisClient } from '../lib/redis-client';
import type { Logger } from '../telemetry/logger';
import { ClusterLeases } from './leases';

export { ClusterLeases, type Claim, type ClusterStats, type OwnerClaim, type StreamClaim } from './leases';

/** Leases across replicas and how to release their two Redis connections. */
export interface ClusterService {
  leases: ClusterLeases;
  close(): Promise<void>;
}

/**
 * Coalescing across replicas, when REDIS_URL is set (and CLUSTER_COALESCING is not `off`):
 * three connections of its own (commands; a subscribed one for the answer channels; a
 * blocking one for the streams other replicas produce), made like the cache's. Undefined otherwise: each replica coalesces alone.
 */
export function createClusterLeases(config: ClusterConfig, deps: { cache: CompletionCache; logger: Logger }): ClusterService | undefined {
  if (!config.redisUrl) return undefined;
  const commands = connectRedisClient({ url: config.redisUrl, logger: deps.logger, name: 'cluster leases' });
  const subscriber = connectRedisClient({ url: config.redisUrl, logger: deps.logger, name: 'cluster answers' });
  const reader = connectRedisClient({ url: config.redisUrl, logger: deps.logger, name: 'cluster streams' });
  const leases = new ClusterLeases({
    client: commands.client,
    subscriber: subscriber.client,
    reader: reader.client,
    mirrorTtlMs: config.streamMaxMs + 60_000,
    namespace: config.namespace,
    leaseMs: config.leaseMs,
    timeoutMs: config.redisTimeoutMs,
    waitMaxMs: config.waitMaxMs,
    readCache: async (key) => {
      try {
        const [value] = await deps.cache.getMany([key]);
        return value ?? undefined;
      } catch {
        return undefined;
      }
    },
    logger: deps.logger,
  });
  return {
    leases,
    close: async () => {
      leases.close();
      await Promise.all([commands.close(), subscriber.close(), reader.close()]);
    },
  };
}
