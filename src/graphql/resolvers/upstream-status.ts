import type { GatewayServices } from '../context';
import type { UpstreamStatus } from '../generated/types';

/** Snapshot of this replica's upstream health, cache and coalescing figures. */
export function upstreamStatus(services: GatewayServices): UpstreamStatus {
  const transport = services.deepseek.status();
  const cache = services.cache.stats();
  const coalescing = services.completions.stats();
  const streams = services.streams.stats();
  return {
    mode: services.config.deepseek.mode === 'real' ? 'REAL' : 'SIMULATOR',
    defaultModel: services.config.deepseek.model,
    circuit: transport.circuit,
    probeInFlight: transport.probeInFlight,
    inFlight: transport.inFlight,
    queued: transport.queued,
    maxConcurrency: transport.maxConcurrency,
    maxQueue: transport.maxQueue,
    calls: transport.calls,
    failures: transport.failures,
    retries: transport.retries,
    rejectedOverloaded: transport.rejectedOverloaded,
    shortCircuited: transport.shortCircuited,
    circuitTransitions: transport.breakerTransitions.map(({ to, at }) => ({ to, at })),
    keys: transport.keys.map((key) => ({
      fingerprint: key.fingerprint,
      active: key.state === 'active',
      reason: key.reason ? key.reason.toUpperCase() : null,
    })),
    cache: {
      store: cache.kind,
      available: cache.available,
      circuit: cache.circuit,
      skipped: cache.skipped,
      hits: cache.hits,
      misses: cache.misses,
      writes: cache.writes,
      errors: cache.errors,
      entries: cache.entries,
      hotAnswers: services.hotAnswers?.stats() ?? null,
    },
    coalescing: {
      upstreamCalls: coalescing.upstreamCalls,
      joinedInFlight: coalescing.joinedInFlight,
      batches: coalescing.batches,
      meanBatchSize: coalescing.meanBatchSize,
      cluster: coalescing.cluster
        ? {
            mode: coalescing.cluster.mode === 'redis' ? 'REDIS' : 'DEGRADED',
            leasesTaken: coalescing.cluster.leasesTaken,
            takeovers: coalescing.cluster.takeovers,
            remoteJoins: coalescing.cluster.remoteJoins,
            localFallbacks: coalescing.cluster.localFallbacks,
            waitTimeouts: coalescing.cluster.waitTimeouts,
            remoteStreams: coalescing.cluster.remoteStreams,
          }
        : null,
    },
    streams: {
      activeStreams: streams.activeStreams,
      subscribers: streams.subscribers,
      upstreamStreams: streams.upstreamStreams,
      joined: streams.joined,
      cacheReplays: streams.cacheReplays,
      abandoned: streams.abandoned,
      joinedCalls: streams.joinedCalls,
      joinedByQueries: streams.joinedByQueries,
      droppedSlow: streams.droppedSlow,
      openSubscriptions: streams.openSubscriptions,
      refusedOverloaded: streams.refusedOverloaded,
    },
    quotas: services.quotas
      ? {
          shared: services.quotas.store.shared,
          circuit: services.quotas.store.shared ? services.quotas.store.circuit : null,
          fallbacks: services.quotas.store.fallbacks,
          refusals: Object.entries(services.quotas.refusals).map(([limit, count]) => ({ limit, count: count ?? 0 })),
        }
      : null,
  };
}
