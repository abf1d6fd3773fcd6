import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { envSchema, type RawEnv } from './schema';

export type NodeEnv = RawEnv['NODE_ENV'];
export type LogLevel = RawEnv['LOG_LEVEL'];

/** The one typed configuration object, built once at start-up. */
export interface Config {
  nodeEnv: NodeEnv;
  server: { host: string; port: number };
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
    maxRetries: number;
    retryBaseMs: number;
    retryMaxMs: number;
    retryBudget: number;
    breakerThreshold: number;
    breakerCooldownMs: number;
    maxConcurrency: number;
    maxQueue: number;
    streamMaxMs: number;
  };
  cache: {
    redisUrl?: string;
    maxEntries: number;
    ttlSeconds: number;
    storeTimeoutMs: number;
    namespace: string;
  };
  batching: { windowMs: number; maxSize: number };
  graphql: {
    /** Largest `completions(inputs:)` list accepted in one field. */
    maxCompletionsInputs: number;
  };
  /** The built-in simulator: in-process when `deepseek.mode` is `simulator`, or standalone on `port`. */
  simulator: { port: number; latencyMs: number; tokenDelayMs: number };
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
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    nodeEnv: raw.NODE_ENV,
    server: { host: raw.HOST, port: raw.PORT },
    logLevel: raw.LOG_LEVEL,
    deepseek: {
      mode,
      apiKeys: uniqueKeys,
      baseUrl: raw.DEEPSEEK_BASE_URL.replace(/\/+$/, ''),
      model: raw.DEEPSEEK_MODEL,
      timeoutMs: raw.DEEPSEEK_TIMEOUT_MS,
      maxRetries: raw.DEEPSEEK_MAX_RETRIES,
      retryBaseMs: raw.DEEPSEEK_RETRY_BASE_MS,
      retryMaxMs: raw.DEEPSEEK_RETRY_MAX_MS,
      retryBudget: raw.DEEPSEEK_RETRY_BUDGET,
      breakerThreshold: raw.DEEPSEEK_BREAKER_THRESHOLD,
      breakerCooldownMs: raw.DEEPSEEK_BREAKER_COOLDOWN_MS,
      maxConcurrency: raw.DEEPSEEK_MAX_CONCURRENCY,
      maxQueue: raw.DEEPSEEK_MAX_QUEUE,
      streamMaxMs: raw.DEEPSEEK_STREAM_MAX_MS,
    },
    cache: {
      redisUrl: raw.REDIS_URL,
      maxEntries: raw.CACHE_MAX_ENTRIES,
      ttlSeconds: raw.CACHE_TTL_SECONDS,
      storeTimeoutMs: raw.CACHE_STORE_TIMEOUT_MS,
      namespace: raw.CACHE_NAMESPACE,
    },
    batching: { windowMs: raw.BATCH_WINDOW_MS, maxSize: raw.BATCH_MAX_SIZE },
    graphql: { maxCompletionsInputs: raw.MAX_COMPLETIONS_INPUTS },
    simulator: { port: raw.SIMULATOR_PORT, latencyMs: raw.SIMULATOR_LATENCY_MS, tokenDelayMs: raw.SIMULATOR_TOKEN_DELAY_MS },
  };
}

/** A config for tests and tools: defaults, simulator mode, no `.env`, overridden by `env`. */
export function testConfig(env: Env = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', ...env }, { dotenvPath: false });
}
