import { createCompletionCache, type CompletionCache, type DocumentStore } from '../../src/cache/completion-cache';
import type { CallOptions, ChatRequest, CompletionRequest, CompletionResult, DeepSeekApi, FinishReason } from '../../src/deepseek/types';
import type { Instruments } from '../../src/telemetry/instruments';
import { silentLogger } from '../../src/telemetry/logger';
import { cacheConfig, completionResult } from '../cache/fixtures';
import type { AbortSignalLike } from '../../src/lib/abort';

export function chatRequest(prompt: string, extra: Partial<ChatRequest> = {}): ChatRequest {
  return { kind: 'chat', model: 'deepseek-flash', messages: [{ role: 'user', content: prompt }], ...extra };
}

function promptOf(request: CompletionRequest): string {
  return request.kind === 'chat' ? request.messages.map((message) => message.content).join('\n') : request.prompt;
}

/**
 * A stand-in for the DeepSeek client: counts calls, answers `answer #n to <prompt>`, and
 * can be held open (`hold`), made to fail for chosen prompts, or to answer with a given
 * finish reason. A held call rejects with the signal's reason when its signal aborts.
 */
export class FakeUpstream implements Pick<DeepSeekApi, 'complete'> {
  readonly calls: Array<{ request: CompletionRequest; signal: AbortSignalLike | undefined }> = [];
  active = 0;
  maxActive = 0;
  failFor = new Map<string, Error>();
  finishReason: FinishReason = 'stop';
  private gate: Promise<void> | undefined;
  private openGate: () => void = () => undefined;

  /** Holds every call (current and future) until `release()`. */
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  release(): void {
    this.gate = undefined;
    this.openGate();
  }

  async complete(request: CompletionRequest, options?: CallOptions): Promise<CompletionResult> {
    this.calls.push({ request, signal: options?.signal });
    const n = this.calls.length;
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.wait(options?.signal);
      const failure = this.failFor.get(promptOf(request));
      if (failure) throw failure;
      return completionResult(`answer #${n} to ${promptOf(request)}`, this.finishReason);
    } finally {
      this.active -= 1;
    }
  }

  private async wait(signal: AbortSignalLike | undefined): Promise<void> {
    const gate = this.gate;
    if (!gate) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      void gate.then(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}

/** A real in-memory completion cache that records every call made to it. */
export class RecordingCache implements CompletionCache {
  readonly inner: CompletionCache;
  readonly getManyCalls: string[][] = [];
  readonly setManyCalls: string[][] = [];
  readonly deleteCalls: string[] = [];

  /** `instruments`: where the inner cache records its spans (default: nowhere). */
  constructor(instruments?: Instruments) {
    this.inner = createCompletionCache({ config: cacheConfig(), logger: silentLogger(), instruments });
  }

  getMany(ids: readonly string[]): Promise<Array<CompletionResult | undefined>> {
    this.getManyCalls.push([...ids]);
    return this.inner.getMany(ids);
  }

  setMany(entries: ReadonlyArray<{ id: string; value: CompletionResult }>): Promise<void> {
    this.setManyCalls.push(entries.map((entry) => entry.id));
    return this.inner.setMany(entries);
  }

  delete(id: string): Promise<boolean> {
    this.deleteCalls.push(id);
    return this.inner.delete(id);
  }

  documents(options: { ttlSeconds: number; maxDocumentBytes: number }): DocumentStore {
    return this.inner.documents(options);
  }

  stats(): ReturnType<CompletionCache['stats']> {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Reads the store directly, bypassing the records. */
  async peek(id: string): Promise<CompletionResult | undefined> {
    return (await this.inner.getMany([id]))[0];
  }
}

/** Lets pending promise jobs, ticks and zero-delay timers run. */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
