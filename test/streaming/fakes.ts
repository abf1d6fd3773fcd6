import type { StreamChunk } from '../../src/streaming/stream-hub';
import type { CallOptions, CompletionRequest, CompletionResult, DeepSeekApi, StreamEvent } from '../../src/deepseek/types';
import { completionResult } from '../cache/fixtures';
import type { AbortSignalLike } from '../../src/lib/abort';

/** One upstream stream the test drives by hand: `delta`, `finish`, `fail`, or leave it silent. */
export class FakeStream {
  private readonly queue: Array<StreamEvent | Error> = [];
  private wake: (() => void) | undefined;
  /** True once the consumer stopped reading (finished, failed, aborted or returned). */
  closed = false;

  constructor(
    readonly request: CompletionRequest,
    readonly signal: AbortSignalLike | undefined,
  ) {}

  delta(content: string, reasoningContent = ''): void {
    this.push({ type: 'delta', content, reasoningContent });
  }

  finish(result: CompletionResult): void {
    this.push({ type: 'finish', result });
  }

  fail(error: Error): void {
    this.push(error);
  }

  get aborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  async *events(): AsyncGenerator<StreamEvent, void, undefined> {
    try {
      for (;;) {
        if (this.signal?.aborted) throw this.signal.reason;
        const next = this.queue.shift();
        if (next === undefined) {
          await new Promise<void>((resolve) => {
            // One abort listener per wait, removed when the wait ends (Node warns past 10).
            const onAbort = (): void => resolve();
            this.wake = () => {
              this.signal?.removeEventListener('abort', onAbort);
              resolve();
            };
            this.signal?.addEventListener('abort', onAbort, { once: true });
          });
          continue;
        }
        if (next instanceof Error) throw next;
        yield next;
        if (next.type === 'finish') return;
      }
    } finally {
      this.closed = true;
    }
  }

  private push(event: StreamEvent | Error): void {
    this.queue.push(event);
    this.wake?.();
  }
}

/** Records every stream the hub opens (chat or FIM alike); the test drives each by hand. */
export class FakeStreamingUpstream implements Pick<DeepSeekApi, 'completeStream'> {
  readonly streams: FakeStream[] = [];

  completeStream(request: CompletionRequest, options: CallOptions = {}): AsyncIterable<StreamEvent> {
    const stream = new FakeStream(request, options.signal);
    this.streams.push(stream);
    return stream.events();
  }

  get last(): FakeStream {
    const stream = this.streams.at(-1);
    if (!stream) throw new Error('no upstream stream was opened');
    return stream;
  }
}

/** Reads an iterator in the background, recording chunks and the error that ended it. */
export function reader(iterator: AsyncIterableIterator<StreamChunk>) {
  const chunks: StreamChunk[] = [];
  let error: Error | undefined;
  const done = (async () => {
    try {
      for await (const chunk of iterator) chunks.push(chunk);
    } catch (failure) {
      error = failure as Error;
    }
  })();
  return {
    chunks,
    get error() {
      return error;
    },
    done,
    text: () => chunks.map((c) => c.delta).join(''),
    reasoning: () => chunks.map((c) => c.reasoningDelta ?? '').join(''),
  };
}

export function result(content: string, extra: Partial<CompletionResult> = {}): CompletionResult {
  return { ...completionResult(content), ...extra };
}
