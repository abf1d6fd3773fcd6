import { Pool } from 'undici';

export interface UpstreamPool {
  pool: Pool;
  /** Path prefix from the base URL (`''` for `https://api.deepseek.com`, `/v1` for `…/v1`). */
  basePath: string;
  /** Origin plus prefix, for span attributes; never carries credentials. */
  displayUrl: string;
}

export interface PoolOptions {
  baseUrl: string;
  /** Sockets in the pool: equal to the bulkhead's concurrency so no request waits inside undici. */
  connections: number;
  /** One attempt waits this long for response headers, then fails (retryably: UND_ERR_HEADERS_TIMEOUT). */
  headersTimeoutMs: number;
  /** Backstop for undici's idle body timeout (keep-alive comments reset it; the deadline does not). */
  bodyTimeoutMs: number;
  keepAliveTimeoutMs?: number;
  connectTimeoutMs?: number;
}

/** One keep-alive undici `Pool` for the upstream origin. */
export function createUpstreamPool(options: PoolOptions): UpstreamPool {
  const url = new URL(options.baseUrl);
  if (url.username || url.password) throw new Error('The DeepSeek base URL must not carry credentials');
  const basePath = url.pathname.replace(/\/+$/, '');
  const pool = new Pool(url.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    connectTimeout: options.connectTimeoutMs ?? Math.min(10_000, options.headersTimeoutMs),
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
  });
  return { pool, basePath, displayUrl: `${url.origin}${basePath}` };
}
