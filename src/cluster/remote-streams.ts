import type { RedisClient } from '../lib/redis-client';
import type { CompletionResult, StreamEvent } from '../deepseek/types';
import { ErrorCode, GatewayError } from '../errors';
import { abortReason, type AbortSignalLike } from '../lib/abort';
import type { Logger } from '../telemetry/logger';

/** Most entries a mirrored stream keeps (approximate trim): far beyond any completion's chunks. */
export const MIRROR_MAX_ENTRIES = 100_000;
/** How long a finished mirror stays readable, for a follower that subscribed just before the end. */
export const MIRROR_TTL_AFTER_END_MS = 60_000;
/** A follower's presence lasts this long unless renewed (every third of it). */
const PRESENCE_TTL_MS = 6_000;
/** Longest block of the reader's XREAD: the liveness checks of the producers run at least this often. */
const READ_BLOCK_MS = 2_000;

/** What a mirror entry holds: a delta, the end (the finished completion), or a failure. */
type Entry = { d: string; r: string } | { end: string } | { err: string };

export interface RemoteStreamsOptions {
  /** Commands (XADD to the control stream, presence, lease checks). */
  client: RedisClient;
  /** A connection of its own for the blocking XREAD (it can run nothing else while it blocks). */
  reader: RedisClient;
  namespace: string;
  /** This replica's id (control stream and presence member). */
  replicaId: string;
  logger: Logger;
}

interface Followed {
  readonly mirrorKey: string;
  readonly leaseKey: string;
  lastId: string;
  push(event: StreamEvent): void;
  fail(error: Error): void;
  end(): void;
  ended: boolean;
}

/**
 * Follows streams other replicas produce, through Redis Streams. The producer (the lease
 * holder, see `ClusterLeases.claimStream`) appends each delta to `<ns>:mirror:<key>` with
 * `XADD` (trimmed to `MIRROR_MAX_ENTRIES`, expiring), then the finished completion or the
 * failure. A follower reads the mirror from its first entry (so it is replayed the whole
 * text, then follows live) on ONE blocking connection per replica: one `XREAD BLOCK` over
 * every followed mirror plus this replica's control stream, to which a new follow appends
 * an entry so the read starts again with it at once.
 *
 * While following, a replica keeps its presence in `<ns>:followers:<key>` (a sorted set
 * scored by expiry, renewed every third of `PRESENCE_TTL_MS`), so the producer keeps its
 * upstream stream open while anyone anywhere still reads it. A producer that dies leaves
 * its lease to expire: a read that finds the lease gone before the end fails its
 * followers with UPSTREAM_UNAVAILABLE (retryable: resubscribing starts or joins afresh).
 */
export class RemoteStreams {
  readonly #options: RemoteStreamsOptions;
  readonly #followed = new Map<string, Set<Followed>>();
  #reading = false;
  #closed = false;
  /** Follows since start. */
  follows = 0;

  constructor(options: RemoteStreamsOptions) {
    this.#options = options;
  }

  mirrorKey(key: string): string {
    return `${this.#options.namespace}:mirror:${key}`;
  }

  followersKey(key: string): string {
    return `${this.#options.namespace}:followers:${key}`;
  }

  /**
   * The events of the stream another replica produces for store key `key` (its lease at
   * `leaseKey`): every delta from the start, then the finish, or the failure. Stops, and
   * withdraws this replica's presence, when `signal` aborts or the consumer returns.
   */
  follow(key: string, leaseKey: string, signal: AbortSignalLike): AsyncIterableIterator<StreamEvent> {
    const queue: Array<StreamEvent | Error | null> = [];
    let wake: (() => void) | undefined;
    const notify = (): void => {
      wake?.();
      wake = undefined;
    };
    const entry: Followed = {
      mirrorKey: this.mirrorKey(key),
      leaseKey,
      lastId: '0-0',
      ended: false,
      push: (event) => {
        queue.push(event);
        notify();
      },
      fail: (error) => {
        if (entry.ended) return;
        entry.ended = true;
        queue.push(error);
        notify();
      },
      end: () => {
        if (entry.ended) return;
        entry.ended = true;
        queue.push(null);
        notify();
      },
    };
    this.follows += 1;
    const set = this.#followed.get(entry.mirrorKey) ?? new Set<Followed>();
    set.add(entry);
    this.#followed.set(entry.mirrorKey, set);
    const presence = this.#keepPresence(key);
    const onAbort = (): void => entry.fail(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    const leave = (): void => {
      entry.ended = true;
      signal.removeEventListener('abort', onAbort);
      presence.stop();
      const current = this.#followed.get(entry.mirrorKey);
      current?.delete(entry);
      if (current?.size === 0) this.#followed.delete(entry.mirrorKey);
    };
    this.#poke();
    this.#read();

    const iterator: AsyncIterableIterator<StreamEvent> = {
      next: async () => {
        for (;;) {
          const item = queue.shift();
          if (item === null) {
            leave();
            return { value: undefined, done: true };
          }
          if (item instanceof Error) {
            leave();
            throw item;
          }
          if (item !== undefined) return { value: item, done: false };
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
      return: async () => {
        leave();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /** Whether any replica still follows the stream for `key` (expired presences dropped first). */
  async hasFollowers(key: string): Promise<boolean> {
    const { client } = this.#options;
    const followers = this.followersKey(key);
    await client.zRemRangeByScore(followers, '-inf', Date.now());
    return (await client.zCard(followers)) > 0;
  }

  close(): void {
    this.#closed = true;
    for (const set of this.#followed.values()) {
      for (const entry of set) entry.fail(new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.'));
    }
    this.#followed.clear();
  }

  /** Renews this replica's presence among the stream's followers until `stop`. */
  #keepPresence(key: string): { stop(): void } {
    const { client, replicaId } = this.#options;
    const followers = this.followersKey(key);
    const member = `${replicaId}:${this.follows}`;
    const renew = (): void => {
      void client
        .multi()
        .zAdd(followers, { score: Date.now() + PRESENCE_TTL_MS, value: member })
        .pExpire(followers, PRESENCE_TTL_MS * 2)
        .exec()
        .catch(() => undefined);
    };
    renew();
    const timer = setInterval(renew, Math.floor(PRESENCE_TTL_MS / 3));
    timer.unref();
    return {
      stop: () => {
        clearInterval(timer);
        void client.zRem(followers, member).catch(() => undefined);
      },
    };
  }

  /** Wakes the reader's blocked XREAD, so it starts again with the new follow. */
  #poke(): void {
    const control = this.#controlKey();
    void this.#options.client
      .multi()
      .xAdd(control, '*', { w: '1' }, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 100 } })
      .pExpire(control, 60_000)
      .exec()
      .catch(() => undefined);
  }

  #controlKey(): string {
    return `${this.#options.namespace}:control:${this.#options.replicaId}`;
  }

  /** The one reader loop: runs while anything is followed. */
  #read(): void {
    if (this.#reading || this.#closed) return;
    this.#reading = true;
    void (async () => {
      try {
        while (this.#followed.size > 0 && !this.#closed) {
          // Per mirror, from the earliest position any of its followers here has reached (a
          // follow that joins later starts from the first entry; the others skip repeats).
          const streams = [
            { key: this.#controlKey(), id: '$' },
            ...[...this.#followed].map(([mirrorKey, set]) => ({ key: mirrorKey, id: [...set].map((e) => e.lastId).reduce(earliest) })),
          ];
          let reply: Array<{ name: string; messages: Array<{ id: string; message: Record<string, string> }> }> | null;
          try {
            reply = (await this.#options.reader.xRead(streams, { BLOCK: READ_BLOCK_MS, COUNT: 512 })) as typeof reply;
          } catch (error) {
            this.#failAll(error);
            break;
          }
          if (!reply) {
            await this.#checkProducers();
            continue;
          }
          for (const { name, messages } of reply) {
            const set = this.#followed.get(name);
            if (!set) continue;
            for (const { id, message } of messages) {
              for (const entry of set) {
                if (compareIds(id, entry.lastId) <= 0) continue;
                entry.lastId = id;
                deliver(entry, message as Entry);
              }
            }
            for (const entry of set) if (entry.ended) set.delete(entry);
            if (set.size === 0) this.#followed.delete(name);
          }
        }
      } finally {
        this.#reading = false;
        // A follow may have come in after the loop's last check.
        if (this.#followed.size > 0 && !this.#closed) this.#read();
      }
    })();
  }

  /** No entry for a whole block: a mirror whose producer's lease is gone will never end. */
  async #checkProducers(): Promise<void> {
    for (const set of [...this.#followed.values()]) {
      const entry = [...set][0];
      if (!entry) continue;
      const held = await this.#options.client.exists(entry.leaseKey).catch(() => 1);
      if (held > 0) continue;
      // The lease may have gone because the stream ended: one more read tells.
      const from = [...set].map((e) => e.lastId).reduce(earliest);
      const tail = await this.#options.client.xRange(entry.mirrorKey, from === '0-0' ? '-' : `(${from}`, '+').catch(() => []);
      for (const { id, message } of tail) {
        for (const each of set) {
          if (compareIds(id, each.lastId) <= 0) continue;
          each.lastId = id;
          deliver(each, message as Entry);
        }
      }
      for (const each of set) {
        each.fail(new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The replica producing this stream went away before it ended; subscribe again.'));
      }
      this.#followed.delete(entry.mirrorKey);
    }
  }

  #failAll(error: unknown): void {
    this.#options.logger.warn({ err: error }, 'reading streams from other replicas failed; their followers are ended');
    for (const set of this.#followed.values()) {
      for (const entry of set) entry.fail(new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'Lost the stream another replica produces (Redis); subscribe again.'));
    }
    this.#followed.clear();
  }
}

/** One mirror entry to its follower: a delta, the end, or the failure. */
function deliver(entry: Followed, message: Entry): void {
  if (entry.ended) return;
  if ('d' in message) {
    entry.push({ type: 'delta', content: message.d, reasoningContent: message.r ?? '' });
    return;
  }
  if ('end' in message) {
    const result = parseResult(message.end);
    if (result) {
      entry.push({ type: 'finish', result });
      entry.end();
    } else {
      entry.fail(new GatewayError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The stream another replica produced ended unreadably; subscribe again.'));
    }
    return;
  }
  if ('err' in message) {
    const code = message.err === ErrorCode.UPSTREAM_TIMEOUT || message.err === ErrorCode.UPSTREAM_REJECTED ? message.err : ErrorCode.UPSTREAM_UNAVAILABLE;
    entry.fail(new GatewayError(code, 'The stream failed on the replica producing it; subscribe again.'));
  }
}

function parseResult(text: string): CompletionResult | undefined {
  try {
    const value = JSON.parse(text) as Partial<CompletionResult>;
    if (typeof value.content === 'string' && typeof value.model === 'string' && value.usage) return value as CompletionResult;
  } catch {
    // not JSON
  }
  return undefined;
}

/** Orders two stream ids (`<ms>-<seq>`). */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

function earliest(a: string, b: string): string {
  return compareIds(a, b) <= 0 ? a : b;
}
