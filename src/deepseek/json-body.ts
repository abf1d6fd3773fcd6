import type { Readable } from 'node:stream';
import { readBody } from '../lib/read-body';
import { invalidResponse } from './classify-error';

/** Chat answers are at most ~384K tokens; 64 MiB is far above any real body. */
const MAX_JSON_BODY = 64 * 1024 * 1024;

/**
 * Reads a JSON body. DeepSeek sends blank lines (`\n`) while a request waits to be
 * scheduled, before the JSON itself, so leading whitespace is stripped first. A body that
 * still is not JSON is a retryable `invalid-response` (UPSTREAM_UNAVAILABLE once mapped); the
 * raw text is never shown.
 */
export function readJsonBody(body: Readable, traceId?: string): Promise<unknown> {
  return readBody(body, MAX_JSON_BODY, { fail: () => invalidResponse('body too large', traceId) }).then((bytes) => {
    const text = bytes.toString('utf8').trimStart();
    if (text.length === 0) throw invalidResponse('empty body', traceId);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw invalidResponse('not JSON', traceId);
    }
  });
}
