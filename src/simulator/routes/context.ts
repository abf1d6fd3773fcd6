import { randomUUID } from 'node:crypto';
import { invalidRequest } from '../errors';
import type { Exchange } from '../exchange';
import type { ResolvedOptions } from '../options';
import type { PromptCache } from '../usage';

/** A request body as read off the wire. */
export type ReadBody = { kind: 'empty' } | { kind: 'json'; value: unknown } | { kind: 'invalid'; message: string };

/** What a route handler gets: the response, the request facts, and the simulator state it may use. */
export interface RouteContext {
  ex: Exchange;
  body: ReadBody;
  /** Options as they were when the request arrived. */
  options: ResolvedOptions;
  /** The key is on the exhausted list (balance reports it as unavailable). */
  exhausted: boolean;
  promptCache: PromptCache;
}

/** Constant per simulator build, like DeepSeek's per-deployment fingerprint (32 hex). */
export const SYSTEM_FINGERPRINT = 'e72d3c7f663d3e1383b00b3884c0517a';

/** The parsed JSON body of a POST, or DeepSeek's 400 for a body that is not JSON. */
export function jsonBody(body: ReadBody): unknown {
  switch (body.kind) {
    case 'json':
      return body.value;
    case 'empty':
      return failParse('EOF while parsing a value at line 1 column 0');
    case 'invalid':
      return failParse(body.message);
  }
}

function failParse(detail: string): never {
  throw invalidRequest(`Failed to parse the request body as JSON: ${detail}`);
}

/** Fields every completion response and chunk repeats. */
export interface CompletionHead {
  id: string;
  created: number;
  model: string;
}

export function completionHead(model: string): CompletionHead {
  return { id: randomUUID(), created: Math.floor(Date.now() / 1000), model };
}
