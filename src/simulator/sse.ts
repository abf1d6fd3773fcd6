import type { Exchange } from './exchange';

/** `data: <one-line JSON>\n\n`, the only event framing DeepSeek uses. */
export function sseData(payload: unknown): string {
  return `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;
}

/**
 * Streams prepared chunks then `data: [DONE]`. `finishIndex` is the chunk carrying
 * finish_reason: the token delay applies before every chunk up to it, and a truncate fault
 * never lets it (or anything after) out. Stops at once, leaving no timer, when the client
 * goes away.
 */
export async function streamChunks(ex: Exchange, chunks: unknown[], finishIndex: number, tokenDelayMs: number): Promise<void> {
  ex.commit(200, 'sse');
  const truncateAt = ex.truncateAfterChunks;
  const limit = truncateAt === undefined ? chunks.length : Math.min(truncateAt, finishIndex);
  for (let i = 0; i < limit; i++) {
    if (i > 0 && i <= finishIndex && !(await ex.sleep(tokenDelayMs))) return;
    if (!ex.alive) return;
    ex.write(sseData(chunks[i]));
  }
  // A truncated stream ends cleanly but without [DONE]: clients must see EOF as truncation.
  ex.end(truncateAt === undefined ? sseData('[DONE]') : undefined);
}
