import type { FastifyInstance } from 'fastify';
import { ErrorCode } from '../errors';
import type { ByteBudget } from '../lib/byte-budget';
import { errorBody } from './operation-request';

/**
 * The request bodies a replica holds at once, bounded (HTTP_MAX_BODY_BYTES_IN_FLIGHT).
 *
 * `HTTP_BODY_LIMIT_BYTES` bounds one body, not how many are held together: a body's text
 * stays in memory, copied into the GraphQL variables, the upstream request and its JSON,
 * until its answer is sent, so 40 concurrent requests carrying a 7 MB prompt each took the
 * gateway to 1.4 GB of RSS (`npm run probes -- --only=big-bodies`), past the manifest's pod
 * limit and V8's heap limit there (a crash: every request of the replica lost). Each request with a
 * body now takes its size from this budget once the body has arrived (before any GraphQL
 * work) and gives it back when its response is closed (sent, failed or abandoned); a request
 * that does not fit gets a 503 `OVERLOADED` with `Retry-After: 1`, like a full upstream queue.
 *
 * Taken after the body arrived, not when its `content-length` is announced: a client that
 * announces 8 MB and sends a byte every few seconds holds no budget (only its socket, which
 * HTTP_REQUEST_TIMEOUT_MS and HTTP_MAX_CONNECTIONS bound), so it cannot lock everyone out.
 * The size is the body's `content-length` (Fastify has checked that the body matched it);
 * a chunked body (no `content-length`) counts as HTTP_BODY_LIMIT_BYTES, the most it can be.
 * A graphql-ws subscription takes its `subscribe` message's size from the same budget
 * (src/http/websocket.ts).
 */

/** What a refused request is told. */
export const BODY_BUDGET_MESSAGE =
  'The gateway is holding as many request bytes as it may (HTTP_MAX_BODY_BYTES_IN_FLIGHT); retry in a moment.';

/**
 * Applies the budget to every route's request body (a `preHandler` hook: after the body is
 * parsed, before the handler). Requests without a body (GET, HEAD, OPTIONS, an empty POST)
 * take nothing.
 */
export function registerBodyBudget(app: FastifyInstance, budget: ByteBudget, bodyLimitBytes: number): void {
  if (budget.maxBytes === 0) return;
  app.addHook('preHandler', (request, reply, done) => {
    const { headers } = request;
    const length = headers['content-length'];
    let bytes: number;
    if (length !== undefined) {
      bytes = Number(length);
      if (!(bytes > 0)) return done();
    } else if (headers['transfer-encoding'] !== undefined) {
      bytes = bodyLimitBytes;
    } else {
      return done();
    }
    if (!budget.take(bytes)) {
      void reply
        .code(503)
        .header('retry-after', '1')
        .type('application/json; charset=utf-8')
        .send(errorBody(BODY_BUDGET_MESSAGE, ErrorCode.OVERLOADED));
      return;
    }
    reply.raw.once('close', () => budget.give(bytes));
    done();
  });
}
