import type { Socket } from 'node:net';
import WebSocket from 'ws';

/** How one subscription of a `RawGraphQLWs` ended (so far). */
export interface SubscriptionState {
  /** `next` messages received. */
  next: number;
  /** Whether a chunk carried a finish reason (the stream's last chunk). */
  finished: boolean;
  /** `extensions.code` of errors in `next` payloads and in an `error` message. */
  codes: string[];
  /** `complete` received, `error` received, or neither yet. */
  end: 'complete' | 'error' | undefined;
}

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

type FormattedErrors = Array<{ extensions?: { code?: unknown } }>;

function codesOf(errors: FormattedErrors | undefined): string[] {
  return (errors ?? []).map((error) => (typeof error.extensions?.code === 'string' ? error.extensions.code : 'NO_CODE'));
}

/**
 * The graphql-ws protocol (`graphql-transport-ws`) by hand on a `ws` socket, so a probe
 * controls what a client library would hide: when the socket is read (`pause`/`resume`
 * the TCP socket under it), what a subscribe message holds, and every message that comes
 * back, kept per operation id.
 */
export class RawGraphQLWs {
  readonly subscriptions = new Map<string, SubscriptionState>();
  bytesReceived = 0;
  closeCode: number | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
    // An error is followed by 'close'; without a listener it would crash the probe.
    ws.on('error', () => undefined);
  }

  /** Opens the socket and completes `connection_init` / `connection_ack`. */
  static async connect(url: string, timeoutMs = 10_000): Promise<RawGraphQLWs> {
    // A zero mask key: `ws` then skips masking, which would otherwise cost this process
    // (not the server) a pass over every megabyte sent.
    const ws = new WebSocket(url, 'graphql-transport-ws', { generateMask: (mask) => mask.fill(0) });
    const client = new RawGraphQLWs(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no connection_ack within ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        ws.terminate();
        reject(error);
      };
      ws.once('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
      ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      ws.once('close', (code) => fail(new Error(`closed (${code}) before connection_ack`)));
      ws.on('message', function onAck(data: Buffer) {
        if ((JSON.parse(data.toString('utf8')) as Message).type !== 'connection_ack') return;
        ws.off('message', onAck);
        clearTimeout(timer);
        resolve();
      });
    });
    return client;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a `subscribe` message; resolves once it has been written to the socket. A string
   * `payload` is the payload's JSON, built beforehand (so a measured window does not
   * include serialising megabytes in this process).
   */
  subscribe(id: string, payload: Record<string, unknown> | string): Promise<void> {
    this.subscriptions.set(id, { next: 0, finished: false, codes: [], end: undefined });
    const json = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const message = `{"id":${JSON.stringify(id)},"type":"subscribe","payload":${json}}`;
    return new Promise((resolve, reject) => {
      this.ws.send(message, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Stops reading the TCP socket: the server's writes pile up in its buffers. */
  pause(): void {
    this.socket().pause();
  }

  resume(): void {
    this.socket().resume();
  }

  /** Waits until every subscription has ended (or the socket closed), at most `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const done = () => this.closeCode !== undefined || [...this.subscriptions.values()].every((s) => s.end !== undefined);
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 250));
        this.waiters.add(wake);
      });
    }
    return true;
  }

  close(): void {
    this.ws.terminate();
  }

  private socket(): Socket {
    // `ws` keeps the TCP socket in a private field; the probe needs it to stop reading.
    return (this.ws as unknown as { _socket: Socket })._socket;
  }

  private onMessage(data: Buffer): void {
    this.bytesReceived += data.length;
    const message = JSON.parse(data.toString('utf8')) as Message;
    const state = message.id === undefined ? undefined : this.subscriptions.get(message.id);
    if (!state) return; // ping/pong and messages for ids we never sent
    if (message.type === 'next') {
      state.next += 1;
      const payload = message.payload as { data?: { completionStream?: { finishReason?: unknown } }; errors?: FormattedErrors };
      if (payload.data?.completionStream?.finishReason) state.finished = true;
      state.codes.push(...codesOf(payload.errors));
    } else if (message.type === 'error') {
      state.codes.push(...codesOf(message.payload as FormattedErrors));
      state.end = 'error';
    } else if (message.type === 'complete') {
      state.end = 'complete';
    }
    if (state.end) this.wake();
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
