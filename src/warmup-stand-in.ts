import { randomBytes } from 'node:crypto';
import { createCompletionCache } from './cache/completion-cache';
import { createCompletionLayers } from './completion-layers';
import type { GatewayServices } from './graphql/context';
import type { WarmUpStandIn } from './http/warmup';
import { createDeepSeekClient } from './deepseek';
import type { Logger } from './telemetry/logger';
import type { Instruments } from './telemetry/instruments';

/**
 * The cache-miss and stream paths for the warm-up (src/http/warmup.ts), built from the same
 * code as the gateway's own but over a DeepSeek stand-in on loopback: the built-in
 * simulator, answering at once. A warm-up operation marked for it resolves its completions
 * and streams here, so undici, the transport's policies, the client's wire mapping and SSE
 * parsing, the coalescer and the stream hub are compiled before the replica takes traffic,
 * and yet nothing reaches DeepSeek. It has a cache of its own (in memory, so no warm-up
 * answer lands in the shared one), a breaker and a pool of its own, no cluster leases, and
 * instruments that record nowhere (`Telemetry.shadowInstruments`: the same classes as the
 * gateway's, so the call sites it compiles stay valid); it lives only while the warm-up runs.
 */
export async function startWarmUpStandIn(gateway: GatewayServices, logger: Logger, instruments: Instruments): Promise<WarmUpStandIn> {
  const { config } = gateway;
  // Loaded only for the warm-up (and in simulator mode), as app.ts loads it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startSimulator } = require('./simulator') as typeof import('./simulator');
  const apiKey = `sk-warmup-${randomBytes(16).toString('hex')}`;
  const simulator = await startSimulator({ host: '127.0.0.1', port: 0, apiKeys: [apiKey], latencyMs: 0, tokenDelayMs: 0 });
  const deepseek = createDeepSeekClient({
    config: { ...config.deepseek, mode: 'simulator', baseUrl: simulator.url, apiKeys: [apiKey] },
    logger,
    instruments,
  });
  const cache = createCompletionCache({ config: { ...config.cache, redisUrl: undefined }, logger, instruments });
  const { completions, streams } = createCompletionLayers({ config, cache, upstream: deepseek, logger, instruments });
  return {
    services: { ...gateway, deepseek, cache, completions, streams },
    close: async () => {
      await streams.close();
      await Promise.allSettled([deepseek.close(), cache.close()]);
      await simulator.close();
    },
  };
}
