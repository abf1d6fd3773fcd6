import { randomBytes } from 'node:crypto';
import { createAuthenticator } from './auth';
import { AccountInfoCache } from './cache/account-info';
import { createCompletionCache } from './cache/completion-cache';
import { createCompletionLayers } from './completion-layers';
import { startWarmUpStandIn } from './warmup-stand-in';
import type { Config } from './config';
import { createDeepSeekClient } from './deepseek';
import type { GatewayServices } from './graphql/context';
import { PersistedDocuments } from './graphql/persisted-documents';
import { createQuotas } from './quotas';
import { HotAnswers } from './graphql/hot-answers';
import { ByteBudget } from './lib/byte-budget';
import { createClusterLeases } from './cluster';
import { startMetricsServer } from './http/metrics-server';
import type { DirectOperationsStats } from './graphql/direct-operations';
import { createHttpServer, GRAPHQL_PATH } from './http/server';
import type { Simulator } from './simulator';
import type { Logger } from './telemetry/logger';
import { noopInstruments } from './telemetry/instruments';
import { observeGateway } from './telemetry/observed';
import type { Telemetry } from './telemetry/sdk';

/** A running gateway: the composition root's product. */
export interface Gateway {
  /** Base URL the server listens on, e.g. http://127.0.0.1:4000 */
  url: string;
  /** `${url}/graphql` */
  graphqlUrl: string;
  /** Base URL of the metrics server (`${metricsUrl}/metrics`), on its own port. */
  metricsUrl: string;
  services: GatewayServices;
  /** The in-process DeepSeek simulator, when no API key is configured. */
  simulator?: Simulator;
  /** Queries run without Apollo's pipeline (src/graphql/direct-operations.ts), unless turned off. */
  directOperations?: DirectOperationsStats;
  /** Drains in-flight requests, then releases the pool, the cache and the simulator. Idempotent. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  /**
   * The OpenTelemetry SDK from `startTelemetry` (src/telemetry/sdk.ts), started BEFORE this
   * call so the layers' instruments bind to it. Without it /metrics answers 404 and the
   * instruments are no-ops (tests, tools).
   */
  telemetry?: Telemetry;
}

/**
 * Builds every layer from the config, bottom-up, and starts listening. Nothing below this
 * function knows how the others are wired.
 */
export async function startGateway(config: Config, logger: Logger, options: GatewayOptions = {}): Promise<Gateway> {
  // Per-caller quotas (QUOTAS_FILE), first: a file that cannot be used stops start-up,
  // naming it, before anything else is started.
  const quotaService = createQuotas(config.quotas, {
    prices: config.deepseek.prices,
    meter: (options.telemetry?.instruments ?? noopInstruments()).meter,
    logger: logger.child({ component: 'quotas' }),
  });
  let simulator: Simulator | undefined;
  let deepseekConfig = config.deepseek;
  if (config.deepseek.mode === 'simulator') {
    // A throwaway key: the simulator checks auth like DeepSeek does, so the real code path
    // (Bearer header, 401 handling) runs in development too.
    const key = `sk-sim-${randomBytes(16).toString('hex')}`;
    // Loaded only here and for the warm-up's stand-in (src/warmup-stand-in.ts): with a real
    // key and WARMUP_OPERATIONS=0 the simulator is never loaded.
    // `require`, not `import()`: in this CommonJS build `import()` stays a native ES import,
    // which needs file extensions and which jest's CommonJS runtime cannot load.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startSimulator } = require('./simulator') as typeof import('./simulator');
    simulator = await startSimulator({
      host: '127.0.0.1',
      port: 0,
      apiKeys: [key],
      latencyMs: config.simulator.latencyMs,
      tokenDelayMs: config.simulator.tokenDelayMs,
    });
    deepseekConfig = { ...config.deepseek, baseUrl: simulator.url, apiKeys: [key] };
    logger.warn(
      { simulatorUrl: simulator.url },
      'NO DEEPSEEK API KEY: answers come from the built-in DeepSeek SIMULATOR, not DeepSeek. Set DEEPSEEK_API_KEY for real completions.',
    );
  }

  // The one tracer and meter of the process, handed to every layer (no-ops without an SDK).
  const instruments = options.telemetry?.instruments ?? noopInstruments();
  const deepseek = createDeepSeekClient({ config: deepseekConfig, logger: logger.child({ component: 'deepseek' }), instruments });
  const cache = createCompletionCache({ config: config.cache, logger: logger.child({ component: 'cache' }), instruments });
  // With REDIS_URL, one upstream call per question across every replica (src/cluster).
  const cluster = createClusterLeases(config.cluster, { cache, logger: logger.child({ component: 'cluster' }) });
  // The coalescer and the stream hub, each joining the other's running call.
  const { completions, streams } = createCompletionLayers({ config, cache, upstream: deepseek, logger, instruments, cluster: cluster?.leases });
  const accountInfo = new AccountInfoCache({ upstream: deepseek, ttlMs: config.deepseek.accountInfoTtlMs });
  const authenticator = createAuthenticator(config.auth, { logger: logger.child({ component: 'auth' }) });
  // A manifest that cannot be read stops start-up, naming the variable.
  const persistedDocuments = config.persistedDocuments.file
    ? PersistedDocuments.load(config.persistedDocuments.file, config.persistedDocuments.only)
    : undefined;
  const services: GatewayServices = {
    config,
    deepseek,
    completions,
    cache,
    streams,
    accountInfo,
    authenticator,
    persistedDocuments,
    quotas: quotaService?.quotas,
    hotAnswers:
      config.hotAnswers.maxEntries > 0
        ? new HotAnswers({ ...config.hotAnswers, cache, ttlSeconds: config.cache.ttlSeconds })
        : undefined,
    bodyBudget: new ByteBudget(config.server.maxBodyBytesInFlight),
  };
  // Gauges and counters read from the layers' own figures at each scrape.
  const stopObserving = observeGateway({
    transport: () => deepseek.status(),
    cache: () => cache.stats(),
    coalescing: () => completions.stats(),
    bodies: () => services.bodyBudget,
  }, instruments.meter);

  let draining = false;
  // Until the warm-up is done (WARMUP_OPERATIONS), /readyz says not ready.
  let warming = config.warmupOperations > 0;
  const http = await createHttpServer({
    services,
    logger,
    readiness: () => {
      if (draining) return { ready: false, reason: 'shutting down' };
      if (warming) return { ready: false, reason: 'warming up' };
      const upstream = deepseek.status();
      if (upstream.circuit === 'OPEN') return { ready: false, reason: 'upstream circuit open' };
      // While the one half-open probe runs, every other call fails fast: take no traffic.
      if (upstream.probeInFlight) return { ready: false, reason: 'upstream circuit probing' };
      return { ready: true };
    },
    instruments,
    // The warm-up's misses and streams go to a DeepSeek stand-in of the same code, whose
    // instruments are of the SDK's classes but record nowhere.
    startWarmUpStandIn: () =>
      startWarmUpStandIn(services, logger.child({ component: 'warmup' }), options.telemetry?.shadowInstruments() ?? noopInstruments()),
  });
  await http.app.listen({ host: config.server.host, port: config.server.port });
  const address = http.app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // Operators' figures on their own port, not the public one.
  const metricsServer = await startMetricsServer({
    host: config.edge.metricsHost,
    port: config.edge.metricsPort,
    scrape: options.telemetry?.scrapeMetrics,
  });
  // Liveness answers from now on; readiness once the hot paths are compiled.
  try {
    await http.warmUp(url);
  } finally {
    warming = false;
  }
  logger.info(
    {
      url: `${url}${GRAPHQL_PATH}`,
      metricsUrl: `${metricsServer.url}/metrics`,
      mode: config.deepseek.mode,
      cache: cache.stats().kind,
      model: config.deepseek.model,
    },
    'gateway listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    graphqlUrl: `${url}${GRAPHQL_PATH}`,
    metricsUrl: metricsServer.url,
    services,
    simulator,
    directOperations: http.directOperations,
    close: () => {
      closing ??= (async () => {
        draining = true;
        await http.stop();
        // Subscriptions are gone by now (the drain closed their sockets); abort any stream left.
        await streams.close();
        await Promise.allSettled([deepseek.close(), cache.close(), authenticator.close(), quotaService?.close(), cluster?.close()]);
        await simulator?.close();
        await metricsServer.close();
        stopObserving();
      })();
      return closing;
    },
  };
}
