import { CompletionService } from './batching/completion-service';
import type { CompletionCache } from './cache/completion-cache';
import type { ClusterLeases } from './cluster';
import type { Config } from './config';
import type { DeepSeekApi } from './deepseek/types';
import { StreamHub } from './streaming/stream-hub';
import type { Instruments } from './telemetry/instruments';
import type { Logger } from './telemetry/logger';

/**
 * The coalescer and the stream hub over one cache and one upstream, wired to each other: a
 * query and a stream for the same completion share one upstream call, whichever starts
 * first, since each looks up the other's running work by store key. The lookups are
 * closures, so neither layer imports the other and each is called only once both are built.
 * Used by the composition root (src/app.ts) and by the warm-up's stand-in
 * (src/warmup-stand-in.ts).
 */
export function createCompletionLayers(options: {
  config: Pick<Config, 'batching' | 'streaming'>;
  cache: CompletionCache;
  upstream: DeepSeekApi;
  logger: Logger;
  instruments: Instruments;
  /** With REDIS_URL: one upstream call per question across every replica (src/cluster). */
  cluster?: ClusterLeases;
}): { completions: CompletionService; streams: StreamHub } {
  const { config, cache, upstream, logger, instruments, cluster } = options;
  const completions: CompletionService = new CompletionService({
    cache,
    upstream,
    logger: logger.child({ component: 'coalescer' }),
    batching: config.batching,
    instruments,
    joinStream: (key, joinOptions) => streams.joinStream(key, joinOptions),
    cluster,
  });
  // Process-wide fan-out of streamed completions (subscriptions); per subscriber only a cursor.
  const streams: StreamHub = new StreamHub({
    cache,
    upstream,
    logger: logger.child({ component: 'stream-hub' }),
    instruments,
    maxBufferedBytes: config.streaming.maxBufferedBytes,
    maxStreams: config.streaming.maxStreams,
    joinCall: (key, joinOptions) => completions.joinCall(key, joinOptions),
    cluster,
  });
  return { completions, streams };
}
