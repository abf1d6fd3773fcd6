import { once } from 'node:events';
import { createClient, type SubscribePayload } from 'graphql-ws';
import WebSocket from 'ws';
import { HANG_LIMIT_MS } from './exchange';
import { errorListProblems, resultProblems } from './verdict';

/**
 * The fuzzer's WebSocket side: subscriptions through graphql-ws's own client, and raw
 * frames through a bare socket (for what that client would refuse to send). Each returns
 * what came back and the problems found in it, or throws naming a hang.
 */

/** Close codes that mean the server failed: graphql-ws's InternalServerError and WebSocket's 1011. */
export const INTERNAL_CLOSE_CODES = new Set([4500, 1011]);

export interface StreamOutcome {
  /** Everything received, as JSON text, for the failure message and the leak check. */
  text: string;
  problems: string[];
}

/** Waits for `promise`, or rejects naming `what` after HANG_LIMIT_MS. */
async function withinHangLimit<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not finished within ${HANG_LIMIT_MS} ms (hang)`)), HANG_LIMIT_MS);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `payloads` as subscriptions on one graphql-ws connection, all at once, until each
 * completes or errors. Results and `error` messages are checked like HTTP results; a
 * socket closed by the server must not carry an internal-error code.
 */
export async function subscribeAll(wsUrl: string, payloads: SubscribePayload[]): Promise<StreamOutcome> {
  const received: unknown[] = [];
  const problems: string[] = [];
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        received.push({ closed: code, reason });
        if (INTERNAL_CLOSE_CODES.has(code)) problems.push(`the server closed the socket with ${code} (${reason})`);
      },
    },
  });
  const one = (payload: SubscribePayload) =>
    new Promise<void>((resolve) => {
      client.subscribe(payload, {
        next: (result) => {
          received.push({ next: result });
          problems.push(...resultProblems(result).map((problem) => `next: ${problem}`));
        },
        error: (error) => {
          // An `error` message is a list of GraphQL errors; a close or a client-side refusal is not.
          if (Array.isArray(error)) {
            received.push({ error });
            problems.push(...errorListProblems(error).map((problem) => `error message: ${problem}`));
          } else {
            received.push({ failed: error instanceof Error ? error.message : (error as { code?: number }).code ?? String(error) });
          }
          resolve();
        },
        complete: () => {
          received.push('complete');
          resolve();
        },
      });
    });
  try {
    await withinHangLimit(Promise.all(payloads.map(one)), 'WebSocket subscriptions');
  } finally {
    await client.dispose();
  }
  return { text: JSON.stringify(received), problems };
}

/**
 * Opens a bare graphql-transport-ws socket, initialises it, sends `frames` as they are, then
 * a ping: the server must answer it with a pong or close the socket with a non-internal
 * code (a frame it cannot read is a 4400). Everything the server sends back is checked.
 */
export async function sendRawFrames(wsUrl: string, frames: Array<string | Buffer>): Promise<StreamOutcome> {
  const socket = new WebSocket(wsUrl, 'graphql-transport-ws');
  const received: unknown[] = [];
  const problems: string[] = [];
  socket.on('error', () => undefined);
  const closed = once(socket, 'close').then((args) => {
    const [code, reason] = args as [number, Buffer];
    received.push({ closed: code, reason: reason.toString() });
    if (INTERNAL_CLOSE_CODES.has(code)) problems.push(`the server closed the socket with ${code} (${reason.toString()})`);
  });
  let acknowledged: () => void = () => undefined;
  const acked = new Promise<void>((resolve) => {
    acknowledged = resolve;
  });
  const ponged = new Promise<void>((resolve) => {
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      let message: { type?: unknown; payload?: unknown };
      try {
        message = JSON.parse(text) as typeof message;
      } catch {
        problems.push(`a frame that is not JSON: ${text.slice(0, 200)}`);
        return;
      }
      received.push(message);
      if (message.type === 'next') problems.push(...resultProblems(message.payload).map((problem) => `next: ${problem}`));
      if (message.type === 'error') problems.push(...errorListProblems(message.payload).map((problem) => `error message: ${problem}`));
      if (message.type === 'connection_ack') acknowledged();
      if (message.type === 'pong') resolve();
    });
  });
  try {
    await withinHangLimit(
      (async () => {
        await once(socket, 'open');
        socket.send(JSON.stringify({ type: 'connection_init' }));
        // Frames before the ack would only be refused as unauthorised (4401).
        await Promise.race([acked, closed]);
        for (const frame of frames) if (socket.readyState === WebSocket.OPEN) socket.send(frame);
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'ping' }));
        await Promise.race([ponged, closed]);
      })(),
      'raw WebSocket frames',
    );
  } finally {
    socket.terminate();
    await closed;
  }
  return { text: JSON.stringify(received), problems };
}
