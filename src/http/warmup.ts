import { randomBytes } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { SCOPES, type Caller } from '../auth';
import { cacheKey, completionId } from '../cache/key';
import type { GatewayServices } from '../graphql/context';
import { normaliseCompletionInput } from '../graphql/input/completion-input';
import type { Logger } from '../telemetry/logger';
import { EVENT_STREAM } from './operation-request';

/** The header that marks an in-process warm-up request (its value is a per-process secret). */
export const WARMUP_HEADER = 'x-gateway-warmup';
/** With `WARMUP_HEADER`: this warm-up request takes the full GraphQL path, never a hot answer. */
export const WARMUP_FULL_PATH_HEADER = 'x-gateway-warmup-full-path';
/**
 * With `WARMUP_HEADER`: this warm-up request's completions and streams go to the loopback
 * DeepSeek stand-in (src/warmup-stand-in.ts), so it takes the cache-miss or stream path.
 */
export const WARMUP_STAND_IN_HEADER = 'x-gateway-warmup-stand-in';
/**
 * A DeepSeek stand-in for the warm-up's misses and streams: the gateway's services with a
 * loopback upstream's completions and stream hub in place of its own. The composition root
 * builds it (src/warmup-stand-in.ts); the warm-up starts it and closes it when done.
 */
export interface WarmUpStandIn {
  services: GatewayServices;
  close(): Promise<void>;
}

/** The warm-up caller's tenant: its answers live in a cache scope of their own with CACHE_SCOPE=tenant. */
export const WARMUP_TENANT = '_warmup';
/** Warm-up requests in flight at once. */
const CONCURRENCY = 16;
/**
 * One warm-up request; `answered` says whether a request for the stand-in got its answer.
 * `run` instead sends it another way (a WebSocket subscription) and gives its status.
 */
interface WarmUpRequest {
  body: string;
  headers: Record<string, string>;
  answered?: (text: string) => boolean;
  run?: () => Promise<number>;
}
/** The warm-up's streams, with the selection clients send. */
const STREAM_QUERY = 'subscription WarmUpStream($input: CompletionInput!) { completionStream(input: $input) { index delta reasoningDelta finishReason cached } }';
const MULTIPART_ACCEPT = 'multipart/mixed;subscriptionSpec="1.0", application/json';
/** The warm-up's cache miss: a completion of a distinct prompt each time, sent as a client sends one. */
const MISS_QUERY = 'query WarmUpMiss($prompt: String!) { completion(input: { prompt: $prompt, thinking: false }) { id content cached } }';

/** The caller of warm-up operations: may read and stream completions, nothing else; not counted by any quota. */
export const WARMUP_CALLER: Caller = Object.freeze({
  kind: 'token',
  subject: 'gateway-warmup',
  tenant: WARMUP_TENANT,
  scopes: new Set<string>([SCOPES.read, SCOPES.stream]),
});

/**
 * Who may say "I am the warm-up": a request carrying this process's random secret in
 * `WARMUP_HEADER`, and only until the warm-up is over (then the header means nothing).
 */
export class WarmUpGate {
  readonly secret = randomBytes(24).toString('base64url');
  #open = true;
  #standIn: GatewayServices | undefined;

  accepts(value: string | string[] | undefined): boolean {
    return this.#open && value === this.secret;
  }

  /**
   * The services of a warm-up request sent to the stand-in (`WARMUP_STAND_IN_HEADER`), while
   * the warm-up runs; undefined for every other request.
   */
  servicesFor(headers: Record<string, string | string[] | undefined>): GatewayServices | undefined {
    return this.#standIn && headers[WARMUP_STAND_IN_HEADER] !== undefined && this.accepts(headers[WARMUP_HEADER]) ? this.#standIn : undefined;
  }

  /** What warm-up requests marked for the stand-in run on (until `close`). */
  useStandIn(services: GatewayServices | undefined): void {
    this.#standIn = services;
  }

  close(): void {
    this.#open = false;
    this.#standIn = undefined;
  }
}

/**
 * Runs `operations` synthetic operations through the whole HTTP stack, over loopback
 * connections to this process's own port (so the sockets, the HTTP parser and the writes
 * are compiled too, not only the handlers), before `/readyz` says ready, so a fresh replica does not take
 * traffic while the JIT still compiles its hot paths: the cache-hit path (a completion of a
 * random prompt whose answer is put in the cache first, and removed after), `{ __typename }`,
 * a refused input, and the cache-miss and stream paths (completions of a distinct prompt
 * each time, as queries and as SSE and multipart subscriptions, answered by a DeepSeek
 * stand-in on loopback, src/warmup-stand-in.ts). Nothing reaches DeepSeek; warm-up
 * operations are counted by no quota, metric or request log line (the cache's and
 * coalescer's own counters do see the hits).
 */
export async function warmUp(options: {
  url: string;
  services: GatewayServices;
  gate: WarmUpGate;
  operations: number;
  path: string;
  logger: Logger;
  /** Starts the DeepSeek stand-in the misses and streams go to (none: the warm-up sends neither). */
  startStandIn?: () => Promise<WarmUpStandIn>;
}): Promise<void> {
  const { url, services, gate, operations, path, logger } = options;
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
  const standInHeaders = { ...headers, [WARMUP_STAND_IN_HEADER]: '1' };
  let misses = 0;
  let streams = 0;
  // The same hit as a hot answer (src/graphql/hot-answers.ts) and through the full path.
  const others: WarmUpRequest[] = [
    { body: hit, headers },
    { body: hit, headers: { ...headers, [WARMUP_FULL_PATH_HEADER]: '1' } },
    { body: JSON.stringify({ query: '{ __typename }' }), headers },
    { body: JSON.stringify({ query: 'query WarmUpRefused($input: CompletionInput!) { completion(input: $input) { id } }', variables: { input: { prompt, temperature: 9 } } }), headers },
  ];
  // A miss, as a client sends one (its prompt in the variables), a distinct prompt each time.
  const miss = (): WarmUpRequest => ({
    body: JSON.stringify({ query: MISS_QUERY, variables: { prompt: `${prompt} miss ${(misses += 1)}` } }),
    headers: standInHeaders,
    answered: (text) => (JSON.parse(text) as { data?: { completion?: unknown } }).data?.completion !== undefined,
  });
  // A streamed completion of a distinct prompt, over SSE or multipart.
  const streamVariables = () => ({ input: { prompt: `${prompt} stream ${(streams += 1)}`, thinking: false, maxTokens: 2 } });
  const stream = (accept: string) => (): WarmUpRequest => ({
    body: JSON.stringify({ query: STREAM_QUERY, variables: streamVariables() }),
    headers: { ...standInHeaders, accept },
    answered: (text) => /"finishReason":"[A-Z_]+"/.test(text) && !text.includes('"errors"'),
  });
  // The same over graphql-ws, on one WebSocket opened for the warm-up (when it opened).
  let sockets: WarmUpSockets | undefined;
  const webSocketStream = (): WarmUpRequest => {
    const variables = streamVariables();
    return { body: '', headers: standInHeaders, run: () => (sockets ? sockets.stream(variables) : Promise.resolve(599)) };
  };
  const standInOthers = [...others.map((request) => () => request), stream(EVENT_STREAM), stream(MULTIPART_ACCEPT), webSocketStream];
  let failed = 0;
  const pool = new Pool(url, { connections: CONCURRENCY });
  // Without its stand-in (it could not start) the warm-up still compiles everything else.
  const standIn = await options.startStandIn?.().catch((error: unknown) => {
    logger.warn({ err: error }, 'warm-up: the DeepSeek stand-in did not start; the cache-miss and stream paths are not warmed');
    return undefined;
  });
  // With the stand-in, every other operation is a miss (the longer path, with the most
  // code), and three in seven of the rest are streams (SSE, multipart, graphql-ws).
  const operation = (n: number): WarmUpRequest => (!standIn ? others[n % others.length] : n % 2 === 1 ? miss() : standInOthers[(n >> 1) % standInOthers.length]());
  gate.useStandIn(standIn?.services);
  if (standIn) {
    sockets = await WarmUpSockets.open(`${url.replace(/^http/, 'ws')}${path}`, standInHeaders).catch((error: unknown) => {
      logger.warn({ err: error }, 'warm-up: its WebSocket did not open; graphql-ws streams are not warmed');
      return undefined;
    });
  }
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
    for (let done = 0; done < operations; done += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, operations - done) }, async (_, index) => {
        const next = operation(done + index);
        if (next.run) return next.run();
        const response = await pool.request({ method: 'POST', path, headers: next.headers, body: next.body });
        if (!next.answered) {
          await response.body.dump();
          return response.statusCode;
        }
        // A miss or stream the stand-in did not answer failed, whatever its status.
        return next.answered(await response.body.text()) ? response.statusCode : 599;
      });
      for (const status of await Promise.all(batch.map((request) => request.catch(() => 599)))) if (status >= 500) failed += 1;
    }
  } finally {
    gate.close();
    sockets?.close();
    await pool.close().catch(() => undefined);
    await standIn?.close().catch(() => undefined);
    await services.cache.delete(key).catch(() => false);
  }
  logger.info(
    { operations, misses, streams, webSocketStreams: sockets?.streamed ?? 0, failed, durationMs: Math.round(performance.now() - started) },
    'gateway warmed up',
  );
}

/**
 * The warm-up's graphql-ws connection: one WebSocket to this process's own port carrying
 * the warm-up's headers on its upgrade request, so its subscriptions are warm-up operations
 * (the warm-up caller, the stand-in's services); each stream is read to its `complete`.
 */
class WarmUpSockets {
  readonly #client: Client;
  /** Streams that finished without errors. */
  streamed = 0;

  private constructor(client: Client) {
    this.#client = client;
  }

  static open(url: string, headers: Record<string, string>): Promise<WarmUpSockets> {
    // The upgrade request carries the warm-up's headers (graphql-ws takes a WebSocket class).
    class WarmUpWebSocket extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    }
    return new Promise((resolve, reject) => {
      // Bounded: a connection not acknowledged within 10 s closes (4504), and the warm-up
      // goes on without graphql-ws streams.
      const client = createClient({ url, webSocketImpl: WarmUpWebSocket, lazy: false, retryAttempts: 0, connectionAckWaitTimeout: 10_000 });
      const stop = (error: unknown): void => {
        offConnected();
        offClosed();
        void client.dispose();
        reject(error instanceof Error ? error : new Error('the warm-up WebSocket closed before it was acknowledged'));
      };
      const offConnected = client.on('connected', () => {
        offConnected();
        offClosed();
        resolve(new WarmUpSockets(client));
      });
      const offClosed = client.on('closed', stop);
    });
  }

  /** One subscription: 200 when it streamed a finished chunk without errors, else 599. */
  stream(variables: Record<string, unknown>): Promise<number> {
    return new Promise((resolve) => {
      let finished = false;
      let failed = false;
      this.#client.subscribe<{ completionStream?: { finishReason?: string | null } }>(
        { query: STREAM_QUERY, variables },
        {
          next: (result) => {
            if (result.errors?.length) failed = true;
            if (result.data?.completionStream?.finishReason) finished = true;
          },
          error: () => resolve(599),
          complete: () => {
            if (finished && !failed) this.streamed += 1;
            resolve(finished && !failed ? 200 : 599);
          },
        },
      );
    });
  }

  close(): void {
    void this.#client.dispose();
  }
}
