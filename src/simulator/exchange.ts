import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SimError } from './errors';

/** How a response body is framed once its status is committed. */
export type ResponseMode = 'json' | 'sse';

const KEEP_ALIVE: Record<ResponseMode, string> = { json: '\n', sse: ': keep-alive\n\n' };

function headersFor(mode: ResponseMode): Record<string, string> {
  return mode === 'sse'
    ? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }
    : { 'content-type': 'application/json' };
}

/**
 * One request's response: commits the status once, writes nothing after the client went
 * away, and owns the abort signal every timer of this request waits on.
 */
export class Exchange {
  private readonly controller = new AbortController();
  readonly signal: AbortSignal = this.controller.signal;
  /** Set by a truncate fault: the response ends early (see `Fault`). */
  truncateAfterChunks: number | undefined;
  /** Settles once the response is finished or torn down. */
  readonly closed: Promise<void>;
  private mode: ResponseMode = 'json';

  constructor(
    readonly res: ServerResponse,
    private readonly onCommit: (status: number) => void,
  ) {
    res.setHeader('x-ds-trace-id', randomBytes(16).toString('hex'));
    res.setHeader('server', 'openresty');
    res.setHeader('x-content-type-options', 'nosniff');
    // 'close' follows a finished response and a client that went away alike: either way
    // nothing more may be written and every timer waiting on `signal` must stop.
    this.closed = new Promise((resolve) =>
      res.once('close', () => {
        this.controller.abort();
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return !this.signal.aborted && !this.res.writableEnded;
  }

  get committed(): boolean {
    return this.res.headersSent;
  }

  /** Stops this request's timers (client gone or simulator closing). */
  abort(): void {
    this.controller.abort();
  }

  /** Sends the status line and headers unless they are already out. */
  commit(status: number, mode: ResponseMode, headers: Record<string, string> = {}): void {
    if (this.res.headersSent || !this.alive) return;
    this.mode = mode;
    this.res.writeHead(status, { ...headersFor(mode), ...headers });
    this.onCommit(status);
  }

  write(text: string): void {
    if (this.alive) this.res.write(text);
  }

  end(text?: string): void {
    if (this.alive) this.res.end(text);
  }

  /** One keep-alive unit in the committed framing ('\n' or an SSE comment). */
  keepAlive(): void {
    this.write(KEEP_ALIVE[this.mode]);
  }

  /** Resolves true after `ms`, or false as soon as the request is aborted (timer cleared). */
  sleep(ms: number): Promise<boolean> {
    if (!this.alive) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', onAbort);
        resolve(this.alive);
      }, ms);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Resolves when the client goes away or the simulator closes. */
  untilAborted(): Promise<void> {
    if (this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  /**
   * Holds a completion for `ms` as if queued. With keep-alive on, DeepSeek commits 200
   * at once and sends keep-alives until inference starts. Resolves false if aborted.
   */
  async queue(ms: number, keepAliveIntervalMs: number, mode: ResponseMode): Promise<boolean> {
    if (ms <= 0) return this.alive;
    if (keepAliveIntervalMs <= 0) return this.sleep(ms);
    this.commit(200, mode);
    const timer = setInterval(() => this.keepAlive(), keepAliveIntervalMs);
    try {
      return await this.sleep(ms);
    } finally {
      clearInterval(timer);
    }
  }

  /** A JSON answer; once a 200 is committed the body (even an error) rides in it. */
  sendJson(status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (!this.alive) return;
    const text = JSON.stringify(body);
    if (this.truncateAfterChunks !== undefined) {
      this.commit(status, 'json', headers);
      this.end(text.slice(0, Math.floor(text.length / 2)));
      return;
    }
    if (!this.committed) {
      this.commit(status, 'json', { ...headers, 'content-length': String(Buffer.byteLength(text)) });
      this.end(text);
    } else {
      this.end(this.mode === 'sse' ? `data: ${text}\n\n` : text);
    }
  }

  sendError(error: SimError): void {
    this.sendJson(error.status, error.toBody(), error.headers);
  }
}
