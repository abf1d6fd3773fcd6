import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { abortError, LightAbortController, type AbortSignalLike } from '../lib/abort';

/** The abort reason of an operation whose client went away. */
export function clientGone(): Error {
  return abortError('client disconnected');
}

/**
 * Client-disconnect handling, written once for every transport: a signal aborted when the
 * client goes away before its answer is complete, so upstream work nobody waits for any
 * more can be released (an HTTP response or SSE stream that closes before it finished; a
 * WebSocket that closes, for every subscription on it). Light signals (`LightAbortController`):
 * every request makes one.
 */
export function responseSignal(response: ServerResponse): AbortSignalLike {
  const controller = new LightAbortController();
  response.once('close', () => {
    if (!response.writableFinished) controller.abort(clientGone());
  });
  return controller.signal;
}

const socketSignals = new WeakMap<WebSocket, AbortSignalLike>();

/** One signal per WebSocket connection, shared by its subscriptions; aborted when it closes. */
export function socketSignal(socket: WebSocket): AbortSignalLike {
  let signal = socketSignals.get(socket);
  if (!signal) {
    const controller = new LightAbortController();
    if (socket.readyState === socket.CLOSED) controller.abort(clientGone());
    else socket.once('close', () => controller.abort(clientGone()));
    signal = controller.signal;
    socketSignals.set(socket, signal);
  }
  return signal;
}
