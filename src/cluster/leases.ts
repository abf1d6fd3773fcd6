import { randomUUID } from 'node:crypto';
import { attempt, StoreBreaker, type StoreCircuit } from '../lib/store-breaker';
import type { RedisClient } from '../lib/redis-client';
import type { CompletionResult, StreamEvent } from '../deepseek/types';
import { ErrorCode, GatewayError } from '../errors';
import { abortReason, type AbortSignalLike } from '../lib/abort';
import type { Logger } from '../telemetry/logger';
import { MIRROR_MAX_ENTRIES, MIRROR_TTL_AFTER_END_MS, RemoteStreams } from './remote-streams';

/**
 * What a replica that missed the cache may do about a call (see `ClusterLeases.claim`):
 * - `owner`: it holds the lease and makes the call; `finish` publishes the outcome and
 *   gives the lease up;
 * - `remote`: another replica made the call; here is its answer;
 * - `local`: Redis is not there (not configured, or not answering): make the call, as
 *   a single replica would (fail open).
 */
export type Claim = OwnerClaim | { kind: 'remote'; result: CompletionResult } | { kind: 'local' };

export interface OwnerClaim {
  kind: 'owner';
  /** Whether this replica took the call over from a holder that died or failed. */
  takeover: boolean;
  /**
   * A stream's event, appended to its mirror for the other replicas' followers (a stream
   * owner only: `claimStream`; a no-op for a call's).
   */
  mirror(event: StreamEvent): void;
  /** The call is over: publish its answer (or that it failed) and release the lease. Idempotent. */
  finish(outcome: { result: CompletionResult } | { error: true; code?: string }): void;
}

/**
 * What a replica about to stream may do (see `ClusterLeases.claimStream`): hold the lease
 * and produce (`owner`, mirroring its events), follow the stream another replica produces
 * (`follow`), take the answer of another replica's plain call (`remote`), or go ahead
 * locally (`local`).
 */
export type StreamClaim = OwnerClaim | { kind: 'follow'; events: AsyncIterableIterator<StreamEvent> } | { kind: 'remote'; result: CompletionResult } | { kind: 'local' };

export interface ClaimOptions {
  /** The waiting call's signal: aborted when every local waiter has gone. */
  signal: AbortSignalLike;
  /** USE loads may take the answer from the cache; REFRESH and BYPASS wait for a fresh one. */
  readCache: boolean;
}

export interface ClusterStats {
  /** `redis`: leases are shared; `degraded`: Redis is not answering, each replica coalesces alone; `local`: no Redis configured. */
  mode: 'redis' | 'degraded' | 'local';
  /** Calls this replica made holding the lease. */
  leasesTaken: number;
  /** Of those, calls taken over from a holder that died or whose call failed. */
  takeovers: number;
  /** Calls answered by another replica's call (no upstream call here). */
  remoteJoins: number;
  /** Calls made without a lease because Redis failed, timed out or was skipped. */
  localFallbacks: number;
  /** Waits that ended at the caller's deadline (DEEPSEEK_TIMEOUT_MS) without an answer. */
  waitTimeouts: number;
  /** Streams this replica followed while another replica produced them. */
  remoteStreams: number;
}

export interface ClusterLeasesOptions {
  /** Commands (SET NX PX, renewals, PUBLISH); connected by the owner. */
  client: RedisClient;
  /** A second connection for SUBSCRIBE (a subscribed connection can run nothing else). */
  subscriber: RedisClient;
  /** Key and channel prefix (CACHE_NAMESPACE). */
  namespace: string;
  leaseMs: number;
  timeoutMs: number;
  /** The longest a call waits for another replica's answer (DEEPSEEK_TIMEOUT_MS). */
  waitMaxMs: number;
  /** A third connection for the blocking XREAD of streams other replicas produce; without it streams are not shared across replicas. */
  reader?: RedisClient;
  /** How long a stream's mirror may live while it streams (DEEPSEEK_STREAM_MAX_MS plus a minute). */
  mirrorTtlMs?: number;
  /** Reads a stored answer by store key (never throws: misses on failure). */
  readCache(key: string): Promise<CompletionResult | undefined>;
  logger: Logger;
}

/** Compare-and-renew: only the holder may extend its lease. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
/** Compare-and-delete: only the holder may release its lease. */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** Redis failures in a row after which leases are skipped (local coalescing) for a cool-down. */
const BREAKER_THRESHOLD = 3;
const BREAKER_COOLDOWN_MS = 1_000;

/** The message an owner publishes when its call is over. */
type Outcome = { ok: true; result: CompletionResult } | { ok: false };

/**
 * One DeepSeek call per distinct question across every replica sharing a Redis. A replica
 * whose call for a store key is about to start claims the key with a lease (`SET NX PX`,
 * renewed every third of `leaseMs` while the call runs); the replicas that find the lease
 * taken wait for the holder's answer on the key's channel (pub/sub) instead of calling.
 * The cache is the source of truth: a waiter reads it once subscribed (an answer stored
 * before it listened is not missed) and again whenever the lease is gone.
 *
 * If the holder dies, its lease expires within `leaseMs` and the first waiter to notice
 * (each checks every half lease) takes the call over; if its call fails (or every caller
 * there leaves), it publishes so and a waiter takes over at once. Nobody waits past
 * `waitMaxMs` or its own signal. If Redis fails or does not answer within `timeoutMs`,
 * the call is made without a lease: each replica coalesces on its own, as without Redis
 * (fail open), and `mode` says `degraded` until Redis answers again (the store breaker
 * skips Redis for a second after three failures in a row, then probes it).
 */
export class ClusterLeases {
  readonly #options: ClusterLeasesOptions;
  readonly #breaker: StoreBreaker;
  readonly #owner = randomUUID();
  readonly #stats: Omit<ClusterStats, 'mode' | 'remoteStreams'> = { leasesTaken: 0, takeovers: 0, remoteJoins: 0, localFallbacks: 0, waitTimeouts: 0 };
  readonly #streams: RemoteStreams | undefined;
  #closed = false;

  constructor(options: ClusterLeasesOptions) {
    this.#options = options;
    this.#streams = options.reader
      ? new RemoteStreams({ client: options.client, reader: options.reader, namespace: options.namespace, replicaId: this.#owner, logger: options.logger })
      : undefined;
    this.#breaker = new StoreBreaker({
      threshold: BREAKER_THRESHOLD,
      cooldownMs: BREAKER_COOLDOWN_MS,
      timeoutMs: options.timeoutMs,
      onStateChange: (state) => this.#onStateChange(state),
    });
  }

  stats(): ClusterStats {
    const up = this.#breaker.state === 'CLOSED' && this.#options.client.isReady && this.#options.subscriber.isReady;
    return { mode: up ? 'redis' : 'degraded', ...this.#stats, remoteStreams: this.#streams?.follows ?? 0 };
  }

  /**
   * Before a stream for store key `key` starts upstream: take the lease (and mirror the
   * stream for the other replicas), or follow the stream the holder produces (replayed from
   * its first chunk, then live), or wait for the answer of the holder's plain call, or
   * (Redis away, or streams not shared) go ahead locally.
   */
  async claimStream(key: string, options: ClaimOptions): Promise<StreamClaim> {
    const streams = this.#streams;
    if (!streams || this.#closed || !this.#options.client.isReady || !this.#options.subscriber.isReady) return this.#local();
    const token = `stream:${this.#owner}:${randomUUID()}`;
    const acquired = await this.#acquire(key, token);
    if (acquired === undefined) return this.#local();
    if (acquired) return this.#own(key, token, false);
    const holder = await this.#redis(() => this.#options.client.get(this.#leaseKey(key)));
    if (holder === undefined) return this.#local();
    if (holder?.startsWith('stream:')) return { kind: 'follow', events: streams.follow(key, this.#leaseKey(key), options.signal) };
    // A plain call holds it (or it just ended): wait for its answer, as a query does.
    return this.#wait(key, options, 'stream');
  }

  /** Whether another replica still follows the stream this one produces for `key`. */
  async hasFollowers(key: string): Promise<boolean> {
    const streams = this.#streams;
    if (!streams) return false;
    return (await this.#redis(() => streams.hasFollowers(key))) ?? false;
  }

  /**
   * Before a call for store key `key`: take the lease, or wait for the replica that holds
   * it, or (Redis away) go ahead locally. Rejects only with the signal's reason (every
   * caller here left) or UPSTREAM_TIMEOUT (`waitMaxMs` passed while waiting).
   */
  async claim(key: string, options: ClaimOptions): Promise<Claim> {
    if (this.#closed || !this.#options.client.isReady || !this.#options.subscriber.isReady) return this.#local();
    const token = `call:${this.#owner}:${randomUUID()}`;
    const acquired = await this.#acquire(key, token);
    if (acquired === undefined) return this.#local();
    if (acquired) return this.#own(key, token, false);
    return this.#wait(key, options);
  }

  /** Stops taking leases (calls from now on are local); the owner closes the clients. */
  close(): void {
    this.#closed = true;
    this.#streams?.close();
  }

  /** SET NX PX: true when taken, false when held elsewhere, undefined when Redis failed. */
  async #acquire(key: string, token: string): Promise<boolean | undefined> {
    const { client, leaseMs } = this.#options;
    const outcome = await this.#redis(() => client.set(this.#leaseKey(key), token, { condition: 'NX', expiration: { type: 'PX', value: leaseMs } }));
    if (outcome === undefined) return undefined;
    return outcome === 'OK';
  }

  #own(key: string, token: string, takeover: boolean): OwnerClaim {
    const { client, leaseMs } = this.#options;
    const leaseKey = this.#leaseKey(key);
    const mirrorKey = token.startsWith('stream:') && this.#streams ? this.#streams.mirrorKey(key) : undefined;
    let mirrored = 0;
    let mirrorBroken = false;
    const append = (entry: Record<string, string>): void => {
      if (!mirrorKey || mirrorBroken) return;
      const first = mirrored === 0;
      mirrored += 1;
      void this.#redis(() => {
        const multi = client.multi().xAdd(mirrorKey, '*', entry, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: MIRROR_MAX_ENTRIES } });
        if (first) multi.pExpire(mirrorKey, this.#options.mirrorTtlMs ?? 660_000);
        return multi.exec();
      }).then((done) => {
        // A lost entry would leave followers with a gap: stop mirroring; they are failed below.
        if (done === undefined) mirrorBroken = true;
      });
    };
    this.#stats.leasesTaken += 1;
    if (takeover) this.#stats.takeovers += 1;
    const renewal = setInterval(() => {
      void this.#redis(() => client.eval(RENEW, { keys: [leaseKey], arguments: [token, String(leaseMs)] }));
    }, Math.max(100, Math.floor(leaseMs / 3)));
    renewal.unref();
    let finished = false;
    return {
      kind: 'owner',
      takeover,
      mirror: (event) => {
        if (event.type === 'delta') append({ d: event.content, r: event.reasoningContent });
      },
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        clearInterval(renewal);
        const message: Outcome = 'result' in outcome ? { ok: true, result: outcome.result } : { ok: false };
        if (mirrorKey) {
          // Followers read the end (or the failure) from the mirror; a broken mirror fails them.
          const broken = mirrorBroken;
          mirrorBroken = false; // the last entry is always attempted
          append(!broken && 'result' in outcome ? { end: JSON.stringify(outcome.result) } : { err: ('code' in outcome && outcome.code) || 'UPSTREAM_UNAVAILABLE' });
          void this.#redis(() => client.pExpire(mirrorKey, MIRROR_TTL_AFTER_END_MS));
        }
        // Published before the lease goes, so a waiter never sees a free lease without the answer.
        void (async () => {
          await this.#redis(() => client.publish(this.#channel(key), JSON.stringify(message)));
          await this.#redis(() => client.eval(RELEASE, { keys: [leaseKey], arguments: [token] }));
        })();
      },
    };
  }

  /** The lease is held elsewhere: wait for its answer, or take the call over. */
  async #wait(key: string, options: ClaimOptions, kind: 'call' | 'stream' = 'call'): Promise<Claim> {
    const { subscriber, leaseMs, waitMaxMs } = this.#options;
    const channel = this.#channel(key);
    let wake: (outcome: Outcome | 'check') => void = () => undefined;
    let pending: Promise<Outcome | 'check'> = new Promise((resolve) => {
      wake = resolve;
    });
    const rearm = (): void => {
      pending = new Promise((resolve) => {
        wake = resolve;
      });
    };
    const listener = (message: string): void => wake(parseOutcome(message) ?? 'check');
    const subscribed = await this.#redis(() => subscriber.subscribe(channel, listener).then(() => true));
    if (subscribed === undefined) return this.#local();
    const deadline = Date.now() + waitMaxMs;
    const poll = setInterval(() => wake('check'), Math.max(50, Math.floor(leaseMs / 2)));
    const onAbort = (): void => wake('check');
    options.signal.addEventListener('abort', onAbort, { once: true });
    try {
      // Listening now: an answer stored before this point is in the cache.
      let event: Outcome | 'check' = 'check';
      for (;;) {
        if (options.signal.aborted) throw abortReason(options.signal);
        if (event !== 'check' && event.ok) return this.#remote(event.result);
        if (event === 'check' && options.readCache) {
          const stored = await this.#options.readCache(key);
          if (stored) return this.#remote(stored);
        }
        // The holder failed (or left), or its lease may have expired: try to take over.
        if (event !== 'check' || !(await this.#leaseHeld(key))) {
          const token = `${kind}:${this.#owner}:${randomUUID()}`;
          const acquired = await this.#acquire(key, token);
          if (acquired === undefined) return this.#local();
          if (acquired) return this.#own(key, token, true);
        }
        if (Date.now() >= deadline) {
          this.#stats.waitTimeouts += 1;
          throw new GatewayError(ErrorCode.UPSTREAM_TIMEOUT, 'No answer from the replica making this call within DEEPSEEK_TIMEOUT_MS.');
        }
        event = await pending;
        rearm();
      }
    } finally {
      clearInterval(poll);
      options.signal.removeEventListener('abort', onAbort);
      void this.#redis(() => subscriber.unsubscribe(channel, listener));
    }
  }

  /** Whether a lease exists for `key`; true when Redis cannot tell (keep waiting, not stampede). */
  async #leaseHeld(key: string): Promise<boolean> {
    const exists = await this.#redis(() => this.#options.client.exists(this.#leaseKey(key)));
    return exists === undefined ? true : exists > 0;
  }

  #remote(result: CompletionResult): Claim {
    this.#stats.remoteJoins += 1;
    return { kind: 'remote', result };
  }

  #local(): Claim {
    this.#stats.localFallbacks += 1;
    return { kind: 'local' };
  }

  /** One Redis command through the breaker and the timeout; undefined when it failed or was skipped. */
  #redis<T>(work: () => Promise<T>): Promise<T | undefined> {
    return attempt(this.#breaker, work, (error) => this.#options.logger.debug({ err: error }, 'cluster lease command failed; coalescing locally'));
  }

  #leaseKey(key: string): string {
    return `${this.#options.namespace}:lease:${key}`;
  }

  #channel(key: string): string {
    return `${this.#options.namespace}:answer:${key}`;
  }

  #onStateChange(state: StoreCircuit): void {
    if (state === 'OPEN') this.#options.logger.warn('cluster coalescing cannot reach Redis; each replica now coalesces on its own');
    else if (state === 'CLOSED') this.#options.logger.info('cluster coalescing reaches Redis again');
  }
}

/** An owner's message, checked: anything malformed is treated as "look again". */
function parseOutcome(message: string): Outcome | undefined {
  try {
    const value = JSON.parse(message) as Partial<Outcome> & { result?: Partial<CompletionResult> };
    if (value.ok === false) return { ok: false };
    const result = value.result;
    if (value.ok === true && result && typeof result.content === 'string' && typeof result.model === 'string' && result.usage) {
      return { ok: true, result: result as CompletionResult };
    }
  } catch {
    // not JSON
  }
  return undefined;
}
