import type { Readable } from 'node:stream';
import { invalidResponse } from './classify-error';

/** Chat answers are at most ~384K tokens; 64 MiB is far above any real body. */
const MAX_JSON_BODY = 64 * 1024 * 1024;

/**
 * Reads a JSON body. DeepSeek sends blank lines (`\n`) while a request waits to be
 * scheduled, before the JSON itself, so leading whitespace is stripped first. A body that
 * still is not JSON is a retryable `invalid-response` (UPSTREAM_UNAVAILABLE once mapped); the
 * raw text is never shown.
 */
export async function readJsonBody(body: Readable, traceId?: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_JSON_BODY) throw invalidResponse('body too large', traceId);
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trimStart();
  if (text.length === 0) throw invalidResponse('empty body', traceId);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalidResponse('not JSON', traceId);
  }
}
