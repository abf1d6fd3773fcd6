import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { SCOPES, type Caller } from '../auth';
import { cacheKey, completionId } from '../cache/key';
import type { GatewayServices } from '../graphql/context';
import { normaliseCompletionInput } from '../graphql/input/completion-input';
import type { Logger } from '../telemetry/logger';

/** The header that marks an in-process warm-up request (its value is a per-process secret). */
export const WARMUP_HEADER = 'x-gateway-warmup';
/** With `WARMUP_HEADER`: this warm-up request takes the full GraphQL path, never a hot answer. */
export const WARMUP_FULL_PATH_HEADER = 'x-gateway-warmup-full-path';
/** The warm-up caller's tenant: its answers live in a cache scope of their own with CACHE_SCOPE=tenant. */
export const WARMUP_TENANT = '_warmup';
/** Warm-up requests in flight at once. */
const CONCURRENCY = 16;

/** The caller of warm-up operations: may read completions, nothing else; not counted by any quota. */
export const WARMUP_CALLER: Caller = Object.freeze({
  kind: 'token',
  subject: 'gateway-warmup',
  tenant: WARMUP_TENANT,
  scopes: new Set<string>([SCOPES.read]),
});

/**
 * Who may say "I am the warm-up": a request carrying this process's random secret in
 * `WARMUP_HEADER`, and only until the warm-up is over (then the header means nothing).
 */
export class WarmUpGate {
  readonly secret = randomBytes(24).toString('base64url');
  #open = true;

  accepts(value: string | string[] | undefined): boolean {
    return this.#open && value === this.secret;
  }

  close(): void {
    this.#open = false;
  }
}

/**
 * Runs `operations` synthetic operations through the whole HTTP stack, over loopback
 * connections to this process's own port (so the sockets, the HTTP parser and the writes
 * are compiled too, not only the handlers), before `/readyz` says ready, so a fresh replica does not take
 * traffic while the JIT still compiles its hot paths: the cache-hit path (a completion of a
 * random prompt whose answer is put in the cache first, and removed after), `{ __typename }`,
 * and a refused input. Nothing reaches DeepSeek; warm-up operations are counted by no quota,
 * metric or request log line (the cache's and coalescer's own counters do see them).
 */
export async function warmUp(options: { url: string; services: GatewayServices; gate: WarmUpGate; operations: number; path: string; logger: Logger }): Promise<void> {
  const { url, services, gate, operations, path } = options;
  if (operations <= 0) {
    gate.close();
    return;
  }
  const started = performance.now();
  const prompt = `gateway warm-up ${gate.secret}`;
  const { request } = normaliseCompletionInput({ prompt, thinking: false }, services.config.deepseek.model);
  const key = cacheKey(completionId(request), services.config.cache.scope === 'tenant' ? WARMUP_TENANT : undefined);
  const headers = { 'content-type': 'application/json', [WARMUP_HEADER]: gate.secret };
  const hit = JSON.stringify({ query: `query WarmUp { completion(input: { prompt: ${JSON.stringify(prompt)}, thinking: false }) { id content cached } }` });
  // The same hit as a hot answer (src/graphql/hot-answers.ts) and through the full path.
  const requests = [
    { body: hit, headers },
    { body: hit, headers: { ...headers, [WARMUP_FULL_PATH_HEADER]: '1' } },
    { body: JSON.stringify({ query: '{ __typename }' }), headers },
    { body: JSON.stringify({ query: 'query WarmUpRefused($input: CompletionInput!) { completion(input: $input) { id } }', variables: { input: { prompt, temperature: 9 } } }), headers },
  ];
  let failed = 0;
  const pool = new Pool(url, { connections: CONCURRENCY });
  try {
    await services.cache.setMany([
      {
        id: key,
        value: {
          model: request.model,
          content: 'warm',
          reasoningContent: null,
          finishReason: 'stop',
          usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2, cacheHitTokens: 0, cacheMissTokens: 1 },
          createdAt: new Date().toISOString(),
          upstreamId: '00000000-0000-4000-8000-000000000000',
        },
      },
    ]);
    for (let sent = 0; sent < operations; sent += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, operations - sent) }, async (_, index) => {
        const { body, headers: requestHeaders } = requests[(sent + index) % requests.length];
        const response = await pool.request({ method: 'POST', path, headers: requestHeaders, body });
        await response.body.dump();
        return response.statusCode;
      });
      for (const status of await Promise.all(batch.map((request) => request.catch(() => 599)))) if (status >= 500) failed += 1;
    }
  } finally {
    gate.close();
    await pool.close().catch(() => undefined);
    await services.cache.delete(key).catch(() => false);
  }
  options.logger.info({ operations, failed, durationMs: Math.round(performance.now() - started) }, 'gateway warmed up');
}
