import { createParser } from 'eventsource-parser';

/**
 * Yields the `data` of each server-sent event in `body`, parsed by a spec-compliant SSE
 * parser: comments (`: keep-alive`) are skipped, multi-byte characters split across
 * chunks are joined, and an unterminated event at EOF is dropped as the spec says.
 * Ending without `[DONE]` is for the caller to judge.
 */
export async function* readSseData(body: AsyncIterable<unknown>): AsyncGenerator<string, void, undefined> {
  const pending: string[] = [];
  const parser = createParser({ onEvent: (event) => pending.push(event.data) });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk as Uint8Array, { stream: true }));
    while (pending.length > 0) yield pending.shift() as string;
  }
  parser.feed(decoder.decode());
  while (pending.length > 0) yield pending.shift() as string;
}
