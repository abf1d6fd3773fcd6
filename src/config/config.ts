import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { authConfig, type AuthConfig, type CacheScope } from './auth';
import { parsePrices, type PriceTable } from './prices';
import { envSchema, type RawEnv } from './schema';

export type NodeEnv = RawEnv['NODE_ENV'];

/** DEEPSEEK_BREAKER_MIN_CALLS when neither it nor its deprecated name is set. */
const DEFAULT_BREAKER_MIN_CALLS = 20;
export type LogLevel = RawEnv['LOG_LEVEL'];

/** The one typed configuration object, built once at start-up. */
export interface Config {
  nodeEnv: NodeEnv;
  server: {
    host: string;
    port: number;
    /** Largest request body (HTTP) and WebSocket message accepted. */
    bodyLimitBytes: number;
    /** A request (headers and body) must have arrived within this; 0 = no limit. */
    requestTimeoutMs: number;
    /** Request headers must have arrived within this. */
    headersTimeoutMs: number;
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeoutMs: number;
    /** Most open connections (0 = no cap). */
    maxConnections: number;
    /** How long a shutdown waits for in-flight operations, streams included, before cutting them. */
    shutdownGraceMs: number;
  };
  /** Subscriptions (src/streaming, src/http/websocket.ts, src/http/sse.ts). */
  streaming: {
    /** Subscriptions one WebSocket connection may have running at once. */
    maxSubscriptionsPerConnection: number;
    /** How far (estimated bytes) a subscriber may fall behind its stream before it is ended. */
    maxBufferedBytes: number;
  };
  logLevel: LogLevel;
  deepseek: {
    /**
     * `real`: DeepSeek at `baseUrl` with `apiKeys`; `simulator`: no key outside production,
     * so the built-in simulator is started in-process and `baseUrl` is filled in then.
     */
    mode: 'real' | 'simulator';
    apiKeys: string[];
    baseUrl: string;
    model: string;
    timeoutMs: number;
    /**
     * One attempt without response headers for this long is abandoned and retried (DeepSeek
     * commits its status at once, then sends keep-alives while a request is queued).
     */
    headersTimeoutMs: number;
    maxRetries: number;
    retryBaseMs: number;
    retryMaxMs: number;
    retryBudget: number;
    /** Share of failed calls in the breaker's window that opens the circuit (0 < rate ≤ 1). */
    breakerFailureRate: number;
    /** Length of the breaker's sliding window. */
    breakerWindowMs: number;
    /** Calls the window needs before its rate counts; as many failed calls in a row open the circuit at once. */
    breakerMinCalls: number;
    /** Time open before one probe call goes through. */
    breakerCooldownMs: number;
    maxConcurrency: number;
    maxQueue: number;
    streamMaxMs: number;
    /**
     * While another key is usable, a key refused with 401/402 is tried again after this long (0 =
     * not while another is usable); with none usable, the least recently refused key is used.
     */
    keyRetryMs: number;
    /** How long `models` and `balance` answers are kept (0 = read live every time). */
    accountInfoTtlMs: number;
    /** USD per 1M tokens by model, for the estimated-cost figures (`DEEPSEEK_PRICES` over the defaults). */
    prices: PriceTable;
  };
  cache: {
    redisUrl?: string;
    maxEntries: number;
    ttlSeconds: number;
    storeTimeoutMs: number;
    namespace: string;
    /** `tenant`: stored answers are per tenant (tenants share nothing); `global`: shared on purpose. */
    scope: CacheScope;
    /** Consecutive failed or timed-out store calls that open the store's circuit. */
    breakerThreshold: number;
    /** How long the store is skipped once its circuit opened, before a probe. */
    breakerCooldownMs: number;
  };
  batching: { windowMs: number; maxSize: number };
  /** Limits every operation is held to before it runs (src/graphql/limits). */
  graphql: {
    /** Completions one operation may ask for (fields plus `completions` list items). */
    maxCompletionsPerOperation: number;
    /** Deepest selection accepted (introspection excepted). */
    maxDepth: number;
    /** Most aliases in one operation (`__typename` included). */
    maxAliases: number;
    /** Lexical tokens per document. */
    maxTokens: number;
    /** Field selections per operation, fragments expanded (introspection excepted). */
    maxFields: number;
    /** Characters of an operation name. */
    maxOperationNameLength: number;
    /** Items of any list argument or variable (`messages`, `_entities` representations…). */
    maxListItems: number;
  };
  /** Who may call, and how tokens are verified (src/auth). */
  auth: AuthConfig;
  /** The edge's browser and operator surface (src/http). */
  edge: {
    /** Origins allowed by CORS: `*` for any (outside production by default), or a list; none by default in production. */
    corsOrigins: '*' | string[];
    /** /metrics is served here, not on the GraphQL port (0 = any free port). */
    metricsPort: number;
    metricsHost: string;
  };
  /** Trusted documents: a persisted-query manifest, and whether only its documents are served. */
  persistedDocuments: { file?: string; only: boolean };
  /** The built-in simulator: in-process when `deepseek.mode` is `simulator`, or standalone on `port`. */
  simulator: { port: number; latencyMs: number; tokenDelayMs: number };
  telemetry: TelemetryConfig;
}

/** OpenTelemetry wiring, from the standard `OTEL_*` variables (see `src/telemetry/sdk.ts`). */
export interface TelemetryConfig {
  /** false when `OTEL_SDK_DISABLED=true`: no tracer, meter or propagator is registered at all. */
  enabled: boolean;
  serviceName: string;
  traces: {
    /** `none` (default without an OTLP endpoint): spans are not recorded, only `traceparent` passes through. */
    exporter: 'otlp' | 'console' | 'none';
    /** Where OTLP/HTTP traces are POSTed: the traces endpoint, or `<endpoint>/v1/traces`. */
    otlpUrl?: string;
    /** Fraction of new traces recorded (a sampled incoming `traceparent` is always followed). */
    sampleRatio: number;
  };
  /** `prometheus`: served at GET /metrics on the GraphQL port; `none`: no meter provider. */
  metrics: { exporter: 'prometheus' | 'none' };
}

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
      shutdownGraceMs: raw.SHUTDOWN_GRACE_MS,
    },
    streaming: {
      maxSubscriptionsPerConnection: raw.MAX_SUBSCRIPTIONS_PER_CONNECTION,
      maxBufferedBytes: raw.STREAM_MAX_BUFFERED_BYTES,
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
    batching: { windowMs: raw.BATCH_WINDOW_MS, maxSize: raw.BATCH_MAX_SIZE },
    graphql: {
      maxCompletionsPerOperation: raw.MAX_COMPLETIONS_PER_OPERATION,
      maxDepth: raw.GRAPHQL_MAX_DEPTH,
      maxAliases: raw.GRAPHQL_MAX_ALIASES,
      maxTokens: raw.GRAPHQL_MAX_TOKENS,
      maxFields: raw.GRAPHQL_MAX_FIELDS,
      maxOperationNameLength: raw.GRAPHQL_MAX_OPERATION_NAME_LENGTH,
      maxListItems: raw.GRAPHQL_MAX_LIST_ITEMS,
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
