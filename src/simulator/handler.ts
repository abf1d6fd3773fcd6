import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Counters } from './counters';
import { SimError, authenticationFails, insufficientBalance, methodNotAllowed, notFound, statusError } from './errors';
import { Exchange } from './exchange';
import { applyFault } from './fault-effects';
import type { Faults } from './faults';
import type { ResolvedOptions } from './options';
import { ROUTES } from './routes';
import type { ReadBody } from './routes/context';
import type { RecordedRequest } from './types';
import type { PromptCache } from './usage';

/** Chat bodies may be up to 48 MiB (deepseek-api.md §1). */
const MAX_BODY_BYTES = 48 * 1024 * 1024;
const MAX_RECORDED = 1000;

/** The simulator state one request handler works with; owned by the server. */
export interface HandlerState {
  counters: Counters;
  faults: Faults;
  promptCache: PromptCache;
  requests: RecordedRequest[];
  exchanges: Set<Exchange>;
  options(): ResolvedOptions;
}

async function readBody(req: IncomingMessage): Promise<ReadBody | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw statusError(413, '', 'Request body exceeds 48 MiB');
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof SimError) throw error;
    return null; // the client went away mid-body
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { kind: 'empty' };
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch (error) {
    return { kind: 'invalid', message: (error as Error).message };
  }
}

function bearerKey(req: IncomingMessage): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1] ?? '';
}

function isStream(body: ReadBody): boolean {
  return body.kind === 'json' && typeof body.value === 'object' && body.value !== null && (body.value as Record<string, unknown>).stream === true;
}

/** Order: count, read and record, fault, route (404/405), auth (401/402), the route itself. */
async function handle(state: HandlerState, req: IncomingMessage, ex: Exchange, record: RecordedRequest): Promise<void> {
  const body = await readBody(req);
  if (body === null) return;
  record.body = body.kind === 'json' ? body.value : undefined;
  state.requests.push(record);
  if (state.requests.length > MAX_RECORDED) state.requests.shift();

  const options = state.options();
  const key = bearerKey(req);
  const route = Object.hasOwn(ROUTES, record.path) ? ROUTES[record.path] : undefined;
  const fault = state.faults.take(record.path);
  if (fault !== undefined && !(await applyFault(ex, fault, { key, stream: route?.completion === true && isStream(body) }))) return;

  if (route === undefined) throw notFound(record.path);
  if (record.method !== route.method) throw methodNotAllowed(record.method, route.method);
  if (key === '' || (options.apiKeys !== undefined && !options.apiKeys.has(key))) throw authenticationFails(key);
  const exhausted = options.exhaustedKeys.has(key);
  if (exhausted && route.completion) throw insufficientBalance();
  await route.handle({ ex, body, options, exhausted, promptCache: state.promptCache });
}

/** The node:http request listener. Never rejects: every failure becomes an answer. */
export function createRequestListener(state: HandlerState): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: { ...req.headers }, body: undefined, at: Date.now() };
    state.counters.requestStarted(path);
    const ex = new Exchange(res, (status) => {
      record.status = status;
      state.counters.statusSent(status);
    });
    state.exchanges.add(ex);
    res.once('close', () => {
      state.counters.requestEnded();
      state.exchanges.delete(ex);
    });
    handle(state, req, ex, record).catch((error: unknown) => {
      if (error instanceof SimError) ex.sendError(error);
      else if (!ex.committed) ex.sendError(statusError(500, ''));
      else res.destroy();
    });
  };
}
