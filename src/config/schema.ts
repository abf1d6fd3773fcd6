import { z } from 'zod';

/**
 * Every environment variable the service reads, with its accepted form and default.
 * `.env.example` and the README's configuration table mirror this list.
 */

const int = (min: number, max: number, form: string) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { message: `expected ${form}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { message: `expected ${form}` }).max(max, { message: `expected ${form}` }));

const ratio = z
  .string()
  .trim()
  .regex(/^(0(\.\d+)?|1(\.0+)?)$/, { message: 'expected a number from 0 to 1' })
  .transform(Number);

/** A share above 0, at most 1 (for a threshold, where 0 would mean "always"). */
const positiveRatio = z
  .string()
  .trim()
  .regex(/^(0(\.\d+)?|1(\.0+)?)$/, { message: 'expected a number greater than 0 and at most 1' })
  .transform(Number)
  .refine((value) => value > 0, { message: 'expected a number greater than 0 and at most 1' });

const url = (form: string) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          const parsed = new URL(value);
          return parsed.protocol === 'http:' || parsed.protocol === 'https:';
        } catch {
          return false;
        }
      },
      { message: `expected ${form}` },
    );

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test'], {
    message: 'expected one of development, production, test',
  }).default('development'),
  HOST: z.string().trim().min(1, { message: 'expected a host name or IP address' }).default('0.0.0.0'),
  PORT: int(0, 65535, 'an integer port from 0 to 65535').default(4000),
  HTTP_BODY_LIMIT_BYTES: int(1024, 67_108_864, 'bytes from 1024 to 67108864').default(8 * 1024 * 1024),
  HTTP_REQUEST_TIMEOUT_MS: int(0, 3_600_000, 'milliseconds from 0 (none) to 3600000').default(30_000),
  HTTP_HEADERS_TIMEOUT_MS: int(1000, 600_000, 'milliseconds from 1000 to 600000').default(10_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(1000, 3_600_000, 'milliseconds from 1000 to 3600000').default(72_000),
  HTTP_MAX_CONNECTIONS: int(0, 1_000_000, 'an integer from 0 (no cap) to 1000000').default(0),
  HTTP_MAX_BODY_BYTES_IN_FLIGHT: int(0, 17_179_869_184, 'bytes from 0 (no bound) to 17179869184').default(32 * 1024 * 1024),
  SHUTDOWN_GRACE_MS: int(0, 3_600_000, 'milliseconds from 0 to 3600000').default(25_000),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: int(1, 10_000, 'an integer from 1 to 10000').default(25),
  MAX_STREAMS: int(1, 1_000_000, 'an integer from 1 to 1000000').default(1000),
  WS_CONNECTION_INIT_TIMEOUT_MS: int(100, 60_000, 'milliseconds from 100 to 60000').default(3_000),
  STREAM_MAX_BUFFERED_BYTES: int(16_384, 1_073_741_824, 'bytes from 16384 to 1073741824').default(1024 * 1024),
  STREAM_STALL_TIMEOUT_MS: int(100, 600_000, 'milliseconds from 100 to 600000').default(30_000),
  STREAM_HEARTBEAT_MS: int(10, 60_000, 'milliseconds from 10 to 60000').default(5_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'expected one of fatal, error, warn, info, debug, trace, silent',
  }).default('info'),

  DEEPSEEK_API_KEY: z.string().trim().optional(),
  DEEPSEEK_API_KEYS: z.string().trim().optional(),
  DEEPSEEK_API_KEY_FILE: z.string().trim().optional(),
  DEEPSEEK_BASE_URL: url('an http(s) URL such as https://api.deepseek.com').default('https://api.deepseek.com'),
  DEEPSEEK_MODEL: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, { message: 'expected a model id such as deepseek-flash' })
    .default('deepseek-flash'),
  DEEPSEEK_TIMEOUT_MS: int(100, 3_600_000, 'milliseconds from 100 to 3600000').default(180_000),
  DEEPSEEK_HEADERS_TIMEOUT_MS: int(100, 3_600_000, 'milliseconds from 100 to 3600000').default(30_000),
  DEEPSEEK_MAX_RETRIES: int(0, 10, 'an integer from 0 to 10').default(2),
  DEEPSEEK_RETRY_BASE_MS: int(1, 60_000, 'milliseconds from 1 to 60000').default(200),
  DEEPSEEK_RETRY_MAX_MS: int(1, 300_000, 'milliseconds from 1 to 300000').default(10_000),
  DEEPSEEK_RETRY_BUDGET: ratio.default(0.2),
  DEEPSEEK_BREAKER_FAILURE_RATE: positiveRatio.default(0.5),
  DEEPSEEK_BREAKER_WINDOW_MS: int(1000, 3_600_000, 'milliseconds from 1000 to 3600000').default(10_000),
  DEEPSEEK_BREAKER_MIN_CALLS: int(1, 100_000, 'an integer from 1 to 100000').optional(),
  /** Deprecated: the former consecutive-failure threshold, read as DEEPSEEK_BREAKER_MIN_CALLS when that is unset. */
  DEEPSEEK_BREAKER_COOLDOWN_MS: int(10, 3_600_000, 'milliseconds from 10 to 3600000').default(15_000),
  DEEPSEEK_MAX_CONCURRENCY: int(1, 2500, 'an integer from 1 to 2500').default(64),
  DEEPSEEK_MAX_QUEUE: int(0, 100_000, 'an integer from 0 to 100000').default(1000),
  DEEPSEEK_KEY_RETRY_MS: int(0, 86_400_000, 'milliseconds from 0 (never) to 86400000').default(300_000),
  DEEPSEEK_STREAM_MAX_MS: int(1000, 3_600_000, 'milliseconds from 1000 to 3600000').default(600_000),
  DEEPSEEK_ACCOUNT_INFO_TTL_MS: int(0, 3_600_000, 'milliseconds from 0 (no caching) to 3600000').default(30_000),

  CACHE_MAX_ENTRIES: int(1, 10_000_000, 'an integer from 1 to 10000000').default(10_000),
  CACHE_TTL_SECONDS: int(1, 31_536_000, 'seconds from 1 to 31536000').default(86_400),
  CACHE_STORE_TIMEOUT_MS: int(1, 60_000, 'milliseconds from 1 to 60000').default(250),
  CACHE_BREAKER_THRESHOLD: int(1, 1000, 'an integer from 1 to 1000').default(3),
  CACHE_BREAKER_COOLDOWN_MS: int(100, 600_000, 'milliseconds from 100 to 600000').default(5_000),
  HOT_ANSWERS_MAX_ENTRIES: int(0, 1_000_000, 'an integer from 0 (off) to 1000000').default(1_000),
  HOT_ANSWERS_MAX_BYTES: int(1024, 1_073_741_824, 'bytes from 1024 to 1073741824').default(16 * 1024 * 1024),
  GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES: int(0, 100_000, 'an integer from 0 (off) to 100000').default(1_000),
  CACHE_NAMESPACE: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, { message: 'expected 1 to 32 letters, digits, _ or -' })
    .default('dsgw'),
  REDIS_URL: z
    .string()
    .trim()
    .refine((value) => /^rediss?:\/\/.+/.test(value), { message: 'expected a redis:// or rediss:// URL' })
    .optional(),

  MAX_COMPLETIONS_PER_OPERATION: int(1, 10_000, 'an integer from 1 to 10000').default(100),
  GRAPHQL_MAX_DEPTH: int(2, 100, 'an integer from 2 to 100').default(8),
  GRAPHQL_MAX_ALIASES: int(0, 1000, 'an integer from 0 to 1000').default(20),
  GRAPHQL_MAX_TOKENS: int(50, 100_000, 'an integer from 50 to 100000').default(2000),
  GRAPHQL_MAX_FIELDS: int(10, 100_000, 'an integer from 10 to 100000').default(500),
  GRAPHQL_MAX_OPERATION_NAME_LENGTH: int(8, 1024, 'an integer from 8 to 1024').default(128),
  GRAPHQL_MAX_LIST_ITEMS: int(16, 100_000, 'an integer from 16 to 100000').default(1000),

  BATCH_WINDOW_MS: int(0, 1000, 'milliseconds from 0 to 1000').default(0),
  BATCH_MAX_SIZE: int(1, 10_000, 'an integer from 1 to 10000').default(100),

  DEEPSEEK_PRICES: z.string().trim().optional(),

  AUTH_MODE: z.enum(['none', 'jwt'], { message: 'expected none or jwt' }).optional(),
  AUTH_JWKS_URL: url('an http(s) URL of a JSON Web Key Set').optional(),
  AUTH_PUBLIC_KEY_FILE: z.string().trim().optional(),
  AUTH_SECRET_FILE: z.string().trim().optional(),
  AUTH_ISSUER: z.string().trim().max(512, { message: 'expected an issuer of at most 512 characters' }).optional(),
  AUTH_AUDIENCE: z.string().trim().max(512, { message: 'expected an audience of at most 512 characters' }).optional(),
  AUTH_CLOCK_TOLERANCE_S: int(0, 300, 'seconds from 0 to 300').default(30),
  AUTH_SCOPES_CLAIM: z.string().trim().regex(/^[A-Za-z0-9_:./-]{1,64}$/, { message: 'expected a claim name such as scope, scp or permissions' }).default('scope'),
  AUTH_TENANT_CLAIM: z.string().trim().regex(/^[A-Za-z0-9_:./-]{1,64}$/, { message: 'expected a claim name such as tenant' }).default('tenant'),
  AUTH_JWKS_TIMEOUT_MS: int(100, 60_000, 'milliseconds from 100 to 60000').default(3_000),
  AUTH_JWKS_MAX_AGE_MS: int(10_000, 86_400_000, 'milliseconds from 10000 to 86400000').default(600_000),
  CACHE_SCOPE: z.enum(['tenant', 'global'], { message: 'expected tenant or global' }).optional(),
  CORS_ORIGINS: z.string().trim().optional(),
  METRICS_PORT: int(0, 65535, 'an integer port from 0 to 65535').default(9464),
  METRICS_HOST: z.string().trim().min(1, { message: 'expected a host name or IP address' }).default('127.0.0.1'),
  WARMUP_OPERATIONS: int(0, 100_000, 'an integer from 0 to 100000').optional(),
  CLUSTER_COALESCING: z.enum(['auto', 'off']).default('auto'),
  CLUSTER_LEASE_MS: int(500, 600_000, 'milliseconds from 500 to 600000').default(5_000),
  CLUSTER_REDIS_TIMEOUT_MS: int(1, 60_000, 'milliseconds from 1 to 60000').default(250),
  QUOTAS_FILE: z.string().trim().min(1).optional(),
  QUOTA_REPLICAS: int(1, 1000, 'an integer from 1 to 1000').default(1),
  QUOTA_REDIS_TIMEOUT_MS: int(1, 60_000, 'milliseconds from 1 to 60000').default(250),
  QUOTA_DEFAULT_MAX_OUTPUT_TOKENS: int(1, 393_216, 'an integer from 1 to 393216').default(32_768),
  PERSISTED_DOCUMENTS_FILE: z.string().trim().optional(),
  PERSISTED_DOCUMENTS_ONLY: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['true', 'false'], { message: 'expected true or false' }))
    .transform((value) => value === 'true')
    .default(false),

  OTEL_SDK_DISABLED: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['true', 'false'], { message: 'expected true or false' }))
    .transform((value) => value === 'true')
    .default(false),
  OTEL_SERVICE_NAME: z
    .string()
    .trim()
    .regex(/^[\x21-\x7e]{1,128}$/, { message: 'expected a service name without spaces' })
    .default('deepseek-graphql-gateway'),
  OTEL_TRACES_EXPORTER: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['otlp', 'console', 'none'], { message: 'expected one of otlp, console, none' }))
    .optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url('an http(s) URL such as http://127.0.0.1:4318').optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url('an http(s) URL such as http://127.0.0.1:4318/v1/traces').optional(),
  OTEL_TRACES_SAMPLER_ARG: ratio.default(1),
  OTEL_METRICS_EXPORTER: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['prometheus', 'none'], { message: 'expected prometheus or none' }))
    .default('prometheus'),

  SIMULATOR_PORT: int(0, 65535, 'an integer port from 0 to 65535').default(4010),
  SIMULATOR_LATENCY_MS: int(0, 600_000, 'milliseconds from 0 to 600000').default(30),
  SIMULATOR_TOKEN_DELAY_MS: int(0, 60_000, 'milliseconds from 0 to 60000').default(5),
});

export type RawEnv = z.infer<typeof envSchema>;
