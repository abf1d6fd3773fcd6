import type { CompletionCache } from '../cache/completion-cache';
import type { CompletionResult } from '../deepseek/types';
import { dedupe, Singleflight } from '../lib/singleflight';
import type { Logger } from '../telemetry/logger';

/**
 * The stream hub's use of the completion cache, by store key (`cacheKey`): one read per key
 * at a time however many identical subscriptions arrive, and reads and writes that fail
 * open (the cache promises never to throw; this guards against one that does).
 */
export class StreamCache {
  /** Cache reads in flight by key. */
  private readonly lookups = new Singleflight<string, Promise<CompletionResult | undefined>>();

  constructor(
    private readonly cache: CompletionCache,
    private readonly logger: Logger,
  ) {}

  /** The stored answer for `key`; undefined when there is none or the read failed. */
  lookup(key: string): Promise<CompletionResult | undefined> {
    return dedupe(this.lookups, key, () => this.read(key));
  }

  /** Stores a finished stream's answer; a failure is logged, never thrown. */
  async write(key: string, value: CompletionResult): Promise<void> {
    try {
      await this.cache.setMany([{ id: key, value }]);
    } catch (error) {
      this.logger.warn({ err: error }, 'cache write failed; the streamed answer is not kept');
    }
  }

  private async read(key: string): Promise<CompletionResult | undefined> {
    try {
      const [value] = await this.cache.getMany([key]);
      return value;
    } catch (error) {
      this.logger.warn({ err: error }, 'cache read failed; streaming from upstream');
      return undefined;
    }
  }
}
