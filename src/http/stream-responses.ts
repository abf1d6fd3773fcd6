import type { ServerResponse } from 'node:http';
import type { Logger } from '../telemetry/logger';
import { ResponseFlow } from './response-flow';

/**
 * The streaming HTTP responses open now (multipart subscriptions and GraphQL over SSE, on
 * `/graphql` and `/graphql/stream`): each with its flow control, all of them cut on the
 * last step of a shutdown.
 */
export class StreamResponses {
  readonly #open = new Set<ServerResponse>();
  readonly #stallTimeoutMs: number;
  readonly #logger: Logger;

  constructor(options: { stallTimeoutMs: number; logger: Logger }) {
    this.#stallTimeoutMs = options.stallTimeoutMs;
    this.#logger = options.logger;
  }

  /** Streaming responses open now. */
  get open(): number {
    return this.#open.size;
  }

  /** Tracks `response` until it closes; returns its flow control (see ResponseFlow). */
  track(response: ServerResponse, transport: 'multipart' | 'sse'): ResponseFlow {
    this.#open.add(response);
    response.once('close', () => this.#open.delete(response));
    return new ResponseFlow(response, {
      stallTimeoutMs: this.#stallTimeoutMs,
      onStall: () =>
        this.#logger.info({ transport, stallTimeoutMs: this.#stallTimeoutMs }, 'streaming response cut: the client stopped reading it'),
    });
  }

  /**
   * Shutdown, last step: ends every open streaming response, like a client disconnect
   * would (which ends its subscription and, if it was the last, the upstream stream).
   */
  cut(): void {
    for (const response of this.#open) response.destroy();
  }
}
