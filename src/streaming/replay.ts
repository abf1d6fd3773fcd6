import type { CompletionResult } from '../deepseek/types';
import { SharedStream } from './shared-stream';

/**
 * A finished answer as a settled stream a subscriber can read like a live one: reasoning
 * first, then the answer, in pieces of at most `chunkChars`, then the finish chunk.
 * Nobody shares it and nothing aborts it, so it has no buffer bound and no events.
 * `cached`: true for a stored answer; false for the answer of a query's upstream call the
 * subscription joined (an upstream call was made for it).
 */
export function replayStream(id: string, result: CompletionResult, chunkChars: number, cached = true): SharedStream {
  const stream = new SharedStream(id, result.model, cached, { maxBufferedBytes: Number.POSITIVE_INFINITY, chunkOverheadBytes: 0 }, {
    onSpill: () => undefined,
    onEmpty: () => undefined,
    onDropSlow: () => undefined,
  });
  for (const piece of split(result.reasoningContent ?? '', chunkChars)) stream.push({ delta: '', reasoningDelta: piece });
  for (const piece of split(result.content, chunkChars)) stream.push({ delta: piece, reasoningDelta: null });
  stream.push({ delta: '', reasoningDelta: null, finish: { reason: result.finishReason, usage: result.usage, result } });
  stream.finish(result);
  return stream;
}

/** `text` in pieces of at most `size` UTF-16 units, never splitting a surrogate pair. */
export function split(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && end - start > 1 && last >= 0xd800 && last <= 0xdbff) end -= 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}
