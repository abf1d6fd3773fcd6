import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { authConfig } from './auth';
import { parsePrices } from './prices';
import { envSchema, type RawEnv } from './schema';
import type { Config, TelemetryConfig } from './types';

export type { ClusterConfig, Config, LogLevel, NodeEnv, QuotasConfig, TelemetryConfig } from './types';

/** DEEPSEEK_BREAKER_MIN_CALLS when it is not set. */
const DEFAULT_BREAKER_MIN_CALLS = 20;

/** Start-up refused: the message names each variable and its accepted form. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Path of a dotenv file read when present; its values never override the environment. */
  dotenvPath?: string | false;
}

type Env = Record<string, string | undefined>;

function readDotenv(path: string | false | undefined): Env {
  if (path === false) return {};
  try {
    return parseDotenv(readFileSync(resolve(path ?? '.env')));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError([`.env: could not be read (${(error as Error).message})`]);
  }
}

function splitKeys(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[,\s]+/)
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
}

/**
 * Builds the config from an environment (default `process.env` plus `.env`).
 * Throws `ConfigError` listing every invalid variable at once.
 */
export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  // Empty strings mean "unset", as in most dotenv-based services.
  const merged: Env = { ...readDotenv(options.dotenvPath), ...env };
  const cleaned = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined && v.trim() !== ''));

  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
    );
  }
  const raw = parsed.data;
  const problems: string[] = [];

  const apiKeys = [...splitKeys(raw.DEEPSEEK_API_KEY), ...splitKeys(raw.DEEPSEEK_API_KEYS)];
  if (raw.DEEPSEEK_API_KEY_FILE) {
    try {
      apiKeys.push(...splitKeys(readFileSync(raw.DEEPSEEK_API_KEY_FILE, 'utf8')));
    } catch (error) {
      problems.push(
        `DEEPSEEK_API_KEY_FILE: expected a readable file holding one key per line (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      );
    }
  }
  const uniqueKeys = [...new Set(apiKeys)];
  if (uniqueKeys.some((key) => !/^[\x21-\x7e]{8,512}$/.test(key))) {
    // The message must not echo the key.
    problems.push('DEEPSEEK_API_KEY: expected printable keys of 8 to 512 characters without spaces');
  }

  const mode: Config['deepseek']['mode'] = uniqueKeys.length > 0 ? 'real' : 'simulator';
  if (mode === 'simulator' && raw.NODE_ENV === 'production') {
    problems.push(
      'DEEPSEEK_API_KEY: required when NODE_ENV=production (or set DEEPSEEK_API_KEYS / DEEPSEEK_API_KEY_FILE); the simulator is for development only',
    );
  }
  if (raw.HTTP_MAX_BODY_BYTES_IN_FLIGHT > 0 && raw.HTTP_MAX_BODY_BYTES_IN_FLIGHT < raw.HTTP_BODY_LIMIT_BYTES) {
    // Else a body the limit allows could never be admitted.
    problems.push('HTTP_MAX_BODY_BYTES_IN_FLIGHT: expected 0 (no bound) or at least HTTP_BODY_LIMIT_BYTES');
  }
  if (raw.DEEPSEEK_RETRY_MAX_MS < raw.DEEPSEEK_RETRY_BASE_MS) {
    problems.push('DEEPSEEK_RETRY_MAX_MS: expected a value at least DEEPSEEK_RETRY_BASE_MS');
  }
  const prices = parsePrices(raw.DEEPSEEK_PRICES);
  if ('problem' in prices) problems.push(prices.problem);
  const auth = authConfig(raw);
  if ('problems' in auth) problems.push(...auth.problems);
  if (raw.PERSISTED_DOCUMENTS_ONLY && !raw.PERSISTED_DOCUMENTS_FILE) {
    problems.push('PERSISTED_DOCUMENTS_ONLY: needs PERSISTED_DOCUMENTS_FILE (the manifest of the documents to serve)');
  }
  if (problems.length > 0 || 'problem' in prices || 'problems' in auth) throw new ConfigError(problems);

  return {
    nodeEnv: raw.NODE_ENV,
    server: {
      host: raw.HOST,
      port: raw.PORT,
      bodyLimitBytes: raw.HTTP_BODY_LIMIT_BYTES,
      requestTimeoutMs: raw.HTTP_REQUEST_TIMEOUT_MS,
      headersTimeoutMs: raw.HTTP_HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: raw.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      maxConnections: raw.HTTP_MAX_CONNECTIONS,
      maxBodyBytesInFlight: raw.HTTP_MAX_BODY_BYTES_IN_FLIGHT,
      shutdownGraceMs: raw.SHUTDOWN_GRACE_MS,
    },
    streaming: {
      maxSubscriptionsPerConnection: raw.MAX_SUBSCRIPTIONS_PER_CONNECTION,
      maxStreams: raw.MAX_STREAMS,
      connectionInitTimeoutMs: raw.WS_CONNECTION_INIT_TIMEOUT_MS,
      maxBufferedBytes: raw.STREAM_MAX_BUFFERED_BYTES,
      stallTimeoutMs: raw.STREAM_STALL_TIMEOUT_MS,
      heartbeatMs: raw.STREAM_HEARTBEAT_MS,
    },
    logLevel: raw.LOG_LEVEL,
    deepseek: {
      mode,
      apiKeys: uniqueKeys,
      baseUrl: raw.DEEPSEEK_BASE_URL.replace(/\/+$/, ''),
      model: raw.DEEPSEEK_MODEL,
      timeoutMs: raw.DEEPSEEK_TIMEOUT_MS,
      headersTimeoutMs: Math.min(raw.DEEPSEEK_HEADERS_TIMEOUT_MS, raw.DEEPSEEK_TIMEOUT_MS),
      maxRetries: raw.DEEPSEEK_MAX_RETRIES,
      retryBaseMs: raw.DEEPSEEK_RETRY_BASE_MS,
      retryMaxMs: raw.DEEPSEEK_RETRY_MAX_MS,
      retryBudget: raw.DEEPSEEK_RETRY_BUDGET,
      breakerFailureRate: raw.DEEPSEEK_BREAKER_FAILURE_RATE,
      breakerWindowMs: raw.DEEPSEEK_BREAKER_WINDOW_MS,
      breakerMinCalls: raw.DEEPSEEK_BREAKER_MIN_CALLS ?? DEFAULT_BREAKER_MIN_CALLS,
      breakerCooldownMs: raw.DEEPSEEK_BREAKER_COOLDOWN_MS,
      maxConcurrency: raw.DEEPSEEK_MAX_CONCURRENCY,
      maxQueue: raw.DEEPSEEK_MAX_QUEUE,
      streamMaxMs: raw.DEEPSEEK_STREAM_MAX_MS,
      keyRetryMs: raw.DEEPSEEK_KEY_RETRY_MS,
      accountInfoTtlMs: raw.DEEPSEEK_ACCOUNT_INFO_TTL_MS,
      prices: prices.prices,
    },
    cache: {
      redisUrl: raw.REDIS_URL,
      maxEntries: raw.CACHE_MAX_ENTRIES,
      ttlSeconds: raw.CACHE_TTL_SECONDS,
      storeTimeoutMs: raw.CACHE_STORE_TIMEOUT_MS,
      namespace: raw.CACHE_NAMESPACE,
      scope: auth.cacheScope,
      breakerThreshold: raw.CACHE_BREAKER_THRESHOLD,
      breakerCooldownMs: raw.CACHE_BREAKER_COOLDOWN_MS,
    },
    hotAnswers: { maxEntries: raw.HOT_ANSWERS_MAX_ENTRIES, maxBytes: raw.HOT_ANSWERS_MAX_BYTES },
    batching: { windowMs: raw.BATCH_WINDOW_MS, maxSize: raw.BATCH_MAX_SIZE },
    graphql: {
      maxCompletionsPerOperation: raw.MAX_COMPLETIONS_PER_OPERATION,
      maxDepth: raw.GRAPHQL_MAX_DEPTH,
      maxAliases: raw.GRAPHQL_MAX_ALIASES,
      maxTokens: raw.GRAPHQL_MAX_TOKENS,
      maxFields: raw.GRAPHQL_MAX_FIELDS,
      maxOperationNameLength: raw.GRAPHQL_MAX_OPERATION_NAME_LENGTH,
      maxListItems: raw.GRAPHQL_MAX_LIST_ITEMS,
      directOperationsMaxEntries: raw.GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES,
    },
    simulator: { port: raw.SIMULATOR_PORT, latencyMs: raw.SIMULATOR_LATENCY_MS, tokenDelayMs: raw.SIMULATOR_TOKEN_DELAY_MS },
    telemetry: telemetryConfig(raw),
    auth: auth.auth,
    edge: {
      corsOrigins: corsOrigins(raw),
      metricsPort: raw.METRICS_PORT,
      metricsHost: raw.METRICS_HOST,
    },
    persistedDocuments: { file: raw.PERSISTED_DOCUMENTS_FILE, only: raw.PERSISTED_DOCUMENTS_ONLY },
    // A fresh replica warms its hot paths up before /readyz says ready (not in tests: it
    // would only slow every gateway a test starts).
    warmupOperations: raw.WARMUP_OPERATIONS ?? (raw.NODE_ENV === 'test' ? 0 : 5_000),
    cluster: {
      redisUrl: raw.CLUSTER_COALESCING === 'off' ? undefined : raw.REDIS_URL,
      namespace: raw.CACHE_NAMESPACE,
      leaseMs: raw.CLUSTER_LEASE_MS,
      redisTimeoutMs: raw.CLUSTER_REDIS_TIMEOUT_MS,
      waitMaxMs: raw.DEEPSEEK_TIMEOUT_MS,
      streamMaxMs: raw.DEEPSEEK_STREAM_MAX_MS,
    },
    quotas: {
      file: raw.QUOTAS_FILE,
      redisUrl: raw.REDIS_URL,
      replicas: raw.QUOTA_REPLICAS,
      redisTimeoutMs: raw.QUOTA_REDIS_TIMEOUT_MS,
      defaultMaxOutputTokens: raw.QUOTA_DEFAULT_MAX_OUTPUT_TOKENS,
      streamMaxMs: raw.DEEPSEEK_STREAM_MAX_MS,
    },
  };
}

/** CORS_ORIGINS: `*`, or origins separated by commas; unset = any outside production, none in production. */
function corsOrigins(raw: RawEnv): '*' | string[] {
  if (raw.CORS_ORIGINS === undefined) return raw.NODE_ENV === 'production' ? [] : '*';
  if (raw.CORS_ORIGINS === '*') return '*';
  return raw.CORS_ORIGINS.split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin.length > 0);
}

/** `<endpoint>/v1/traces`, as the OTLP exporter spec builds the signal URL from the base one. */
function otlpTracesUrl(raw: RawEnv): string | undefined {
  if (raw.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return raw.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (raw.OTEL_EXPORTER_OTLP_ENDPOINT) return `${raw.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

function telemetryConfig(raw: RawEnv): TelemetryConfig {
  const otlpUrl = otlpTracesUrl(raw);
  // An endpoint alone means "export there": the usual way collectors are configured.
  const exporter = raw.OTEL_TRACES_EXPORTER ?? (otlpUrl ? 'otlp' : 'none');
  return {
    enabled: !raw.OTEL_SDK_DISABLED,
    serviceName: raw.OTEL_SERVICE_NAME,
    traces: {
      exporter,
      // The OTLP/HTTP default of the specification when no endpoint is given.
      otlpUrl: exporter === 'otlp' ? (otlpUrl ?? 'http://localhost:4318/v1/traces') : otlpUrl,
      sampleRatio: raw.OTEL_TRACES_SAMPLER_ARG,
    },
    metrics: { exporter: raw.OTEL_METRICS_EXPORTER },
  };
}

/** A config for tests and tools: defaults, simulator mode, no `.env`, overridden by `env`. */
export function testConfig(env: Env = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env }, { dotenvPath: false });
}
