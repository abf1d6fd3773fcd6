import type { FastifyInstance } from 'fastify';
import type { Logger } from '../telemetry/logger';
import type { StreamResponses } from './stream-responses';
import type { WebSocketTransport } from './websocket';

export interface DrainOptions {
  app: FastifyInstance;
  webSocket: WebSocketTransport;
  /** The open multipart and SSE responses. */
  streams: StreamResponses;
  /** SHUTDOWN_GRACE_MS: how long in-flight work may take to finish. */
  graceMs: number;
  logger: Logger;
}

/**
 * A graceful shutdown of the HTTP edge, in three steps:
 * 1. stop listening; new subscriptions on open WebSocket connections are refused with
 *    OVERLOADED (the client resubscribes elsewhere); responses close their connections;
 * 2. wait for in-flight work, up to `graceMs`: HTTP operations (a thinking-mode call can
 *    take minutes), SSE streams, and WebSocket subscriptions;
 * 3. cut whatever still runs: WebSocket sockets get 1001 (Going away), SSE and multipart responses and
 *    HTTP connections are closed. Upstream calls nobody waits for any more are aborted by
 *    their callers' signals, which the transport never counts as failures.
 * Resolves once the server has closed. Kubernetes' `terminationGracePeriodSeconds` must
 * be longer than `graceMs` (see README).
 */
export async function drainHttp(options: DrainOptions): Promise<void> {
  const { app, webSocket, streams, graceMs, logger } = options;
  const closed = app.close();
  const subscriptions = webSocket.drain();
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'grace over'>((resolve) => {
    timer = setTimeout(resolve, graceMs, 'grace over');
  });
  const outcome = await Promise.race([Promise.all([closed, subscriptions]).then(() => 'drained' as const), graceOver]);
  clearTimeout(timer);
  if (outcome === 'grace over') {
    logger.warn(
      { graceMs, webSocketSubscriptions: webSocket.running, httpStreams: streams.open },
      'shutdown grace period over: cutting the operations still running',
    );
  }
  // Idempotent when everything has drained; otherwise ends what is left.
  streams.cut();
  await webSocket.close();
  app.server.closeAllConnections();
  await closed;
}
