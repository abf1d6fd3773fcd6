/**
 * A reader of Apollo's multipart subscription responses, written from the protocol's
 * description (parts between `--graphql` delimiters, each `content-type: application/json`
 * then a JSON body): the tests check the gateway's framing with it, not with the code
 * under test.
 */
export interface MultipartPart {
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface MultipartReader {
  /** Parts received so far, heartbeats (`{}`) included. */
  readonly parts: MultipartPart[];
  /** Whether the closing delimiter `--graphql--` has arrived. */
  readonly closed: boolean;
  /** Resolves when the response body ends (rejects if it breaks). */
  readonly done: Promise<void>;
}

const DELIMITER = '\r\n--graphql';

export function readMultipart(body: ReadableStream<Uint8Array>): MultipartReader {
  const parts: MultipartPart[] = [];
  let closed = false;
  let buffer = '';
  const decoder = new TextDecoder();
  const take = (): void => {
    for (;;) {
      const at = buffer.indexOf(DELIMITER);
      if (at < 0) return;
      const part = buffer.slice(0, at);
      buffer = buffer.slice(at + DELIMITER.length);
      if (buffer.startsWith('--')) closed = true;
      const split = part.indexOf('\r\n\r\n');
      if (split < 0) continue; // the preamble before the first delimiter
      const headers: Record<string, string> = {};
      for (const line of part.slice(0, split).split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      parts.push({ headers, body: JSON.parse(part.slice(split + 4)) as Record<string, unknown> });
    }
  };
  const done = (async () => {
    const reader = body.getReader();
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      take();
    }
  })();
  return {
    parts,
    get closed() {
      return closed;
    },
    done,
  };
}

/** The payloads of the parts that are not heartbeats. */
export function payloads(reader: MultipartReader): Array<Record<string, unknown>> {
  return reader.parts.filter((part) => Object.keys(part.body).length > 0).map((part) => part.body);
}
