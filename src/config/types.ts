import type { AuthConfig, CacheScope } from './auth';
import type { PriceTable } from './prices';
import type { RawEnv } from './schema';

export type NodeEnv = RawEnv['NODE_ENV'];
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
    /** Request bodies held at once, in bytes, from arrival to response (0 = no bound; src/http/body-budget.ts). */
    maxBodyBytesInFlight: number;
    /** How long a shutdown waits for in-flight operations, streams included, before cutting them. */
    shutdownGraceMs: number;
  };
  /** Subscriptions (src/streaming, src/http/websocket.ts, src/http/sse.ts, src/http/multipart.ts). */
  streaming: {
    /** Subscriptions one WebSocket connection may have running at once. */
    maxSubscriptionsPerConnection: number;
    /** Subscriptions this replica serves at once, every transport together (beyond: OVERLOADED). */
    maxStreams: number;
    /** A WebSocket connection that has not sent `connection_init` by then is closed (4408). */
    connectionInitTimeoutMs: number;
    /** How far (estimated bytes) a subscriber may fall behind its stream before it is ended. */
    maxBufferedBytes: number;
    /** A multipart or SSE response the client has read nothing of for this long is cut. */
    stallTimeoutMs: number;
    /** How often an idle multipart subscription sends a heartbeat part. */
    heartbeatMs: number;
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
  /** Answers to repeated completion queries kept to be served without executing (src/graphql/hot-answers.ts); 0 entries: off. */
  hotAnswers: { maxEntries: number; maxBytes: number };
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
    /** Queries kept to run without Apollo's pipeline (src/graphql/direct-operations.ts); 0: off. */
    directOperationsMaxEntries: number;
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
  /** WARMUP_OPERATIONS: synthetic operations run in-process before /readyz says ready (0 = none). */
  warmupOperations: number;
  /** Coalescing across replicas through Redis (src/cluster); no Redis URL, per replica only. */
  cluster: ClusterConfig;
  /** Per-caller quotas and spend budgets (src/quotas); no file, no limits. */
  quotas: QuotasConfig;
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

export interface QuotasConfig {
  /** QUOTAS_FILE: the policies (JSON or YAML); undefined = no limits. */
  file?: string;
  /** REDIS_URL: counters shared by every replica; undefined = per replica. */
  redisUrl?: string;
  /** QUOTA_REPLICAS: replicas sharing the counters; each falls back to limit / replicas while Redis is down. */
  replicas: number;
  /** QUOTA_REDIS_TIMEOUT_MS: a limiter call Redis has not answered by then uses the local fallback. */
  redisTimeoutMs: number;
  /** QUOTA_DEFAULT_MAX_OUTPUT_TOKENS: the output reserved for a call without maxTokens. */
  defaultMaxOutputTokens: number;
  /** DEEPSEEK_STREAM_MAX_MS: a stream slot left by a replica that died expires after this (plus a minute). */
  streamMaxMs: number;
}

export interface ClusterConfig {
  /** REDIS_URL, unless CLUSTER_COALESCING=off: where replicas lease calls and publish answers. */
  redisUrl?: string;
  /** CACHE_NAMESPACE: prefix of the lease keys and answer channels. */
  namespace: string;
  /** CLUSTER_LEASE_MS: a call's lease, renewed while it runs; a dead holder's is taken over after this. */
  leaseMs: number;
  /** CLUSTER_REDIS_TIMEOUT_MS: a lease command not answered by then: coalesce locally. */
  redisTimeoutMs: number;
  /** DEEPSEEK_TIMEOUT_MS: the longest a replica waits for another's answer. */
  waitMaxMs: number;
  /** DEEPSEEK_STREAM_MAX_MS: a stream's mirror in Redis lives this long (plus a minute) while it streams. */
  streamMaxMs: number;
}
