import type { Logger } from 'pino';
import type { Config } from '../config';
import { UnreachableCaseError } from '../errors';
import { genAiRequestAttributes, genAiResponseAttributes, type GenAiOperation } from '../telemetry/gen-ai';
import { noopInstruments, type Instruments } from '../telemetry/instruments';
import { usageMetrics, type UsageMetrics } from '../telemetry/metrics';
import { Transport, headerValue, type TransportResponse, type TransportStatus, type TransportTuning } from '../transport';
import { classifyFailure, streamTruncated } from './classify-error';
import { readJsonBody } from './json-body';
import { JSON_HEADERS, PATHS, SSE_HEADERS, TRACE_ID_HEADER } from './provider';
import { toWireChatRequest, toWireFimRequest } from './request-body';
import { fromWireBalance, fromWireChatCompletion, fromWireFimCompletion, fromWireModelList } from './response';
import { readSseData } from './sse-stream';
import { ChatStreamAssembler } from './stream-assembler';
import type {
  Balance,
  CallOptions,
  ChatRequest,
  CompletionRequest,
  CompletionResult,
  DeepSeekApi,
  FimRequest,
  ModelInfo,
  StreamEvent,
} from './types';

export interface DeepSeekClientOptions {
  config: Config['deepseek'];
  logger: Logger;
  /** Transport knobs that are not configuration (retry-budget window and floor, jitter). */
  tuning?: TransportTuning;
  /** Tracer and meter for spans, token usage and cost (default: record nothing). */
  instruments?: Instruments;
}

/** Reads a JSON response and maps it, with the response's trace id. */
function json<T>(map: (json: unknown, traceId: string | undefined) => T) {
  return async ({ headers, body }: TransportResponse): Promise<T> => {
    const traceId = headerValue(headers, TRACE_ID_HEADER);
    return map(await readJsonBody(body, traceId), traceId);
  };
}

/** Span attributes of a finished completion: usage, response model and DeepSeek's trace id. */
function describeCompletion(result: CompletionResult) {
  return { ...genAiResponseAttributes(result), ...(result.traceId ? { 'upstream.trace_id': result.traceId } : {}) };
}

/**
 * The typed DeepSeek client: maps `types.ts` requests to DeepSeek's wire format and
 * back, over the resilient transport. Every failure reaches the caller as an
 * `UpstreamError` (or `OverloadedError`, or the caller's own abort reason).
 */
export class DeepSeekClient implements DeepSeekApi {
  readonly #transport: Transport;
  readonly #usage: UsageMetrics;

  constructor(options: DeepSeekClientOptions) {
    const instruments = options.instruments ?? noopInstruments();
    this.#usage = usageMetrics(options.config.prices, instruments.meter);
    this.#transport = new Transport({
      settings: options.config,
      classify: classifyFailure,
      logger: options.logger,
      traceIdHeader: TRACE_ID_HEADER,
      tuning: options.tuning,
      instruments,
    });
  }

  /**
   * `POST /chat/completions`. A `finishReason` of `insufficient_system_resource` comes back
   * as a result like any other; callers must not cache it.
   */
  async chat(request: ChatRequest, options: CallOptions = {}): Promise<CompletionResult> {
    const result = await this.#transport.request({
      method: 'POST',
      path: PATHS.chat,
      headers: JSON_HEADERS,
      body: JSON.stringify(toWireChatRequest(request, false)),
      signal: options.signal,
      traceContext: options.traceContext,
      spanAttributes: genAiRequestAttributes('chat', request.model, request.maxTokens),
      describe: describeCompletion,
      consume: json(fromWireChatCompletion),
    });
    return this.#counted('chat', result);
  }

  /** `POST /beta/completions` (fill in the middle). */
  async fim(request: FimRequest, options: CallOptions = {}): Promise<CompletionResult> {
    const result = await this.#transport.request({
      method: 'POST',
      path: PATHS.fim,
      headers: JSON_HEADERS,
      body: JSON.stringify(toWireFimRequest(request)),
      signal: options.signal,
      traceContext: options.traceContext,
      spanAttributes: genAiRequestAttributes('text_completion', request.model, request.maxTokens),
      describe: describeCompletion,
      consume: json(fromWireFimCompletion),
    });
    return this.#counted('text_completion', result);
  }

  complete(request: CompletionRequest, options?: CallOptions): Promise<CompletionResult> {
    switch (request.kind) {
      case 'chat':
        return this.chat(request, options);
      case 'fim':
        return this.fim(request, options);
      default:
        throw new UnreachableCaseError(request);
    }
  }

  /**
   * Streams a chat completion: a `delta` per chunk with text, then one `finish` with the
   * assembled result. Retries, breaker, bulkhead and keys apply to opening the stream only.
   * Leaving the loop early (break, return, throw) aborts the upstream request.
   */
  async *chatStream(request: ChatRequest, options: CallOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    const stream = await this.#transport.openStream({
      method: 'POST',
      path: PATHS.chat,
      headers: SSE_HEADERS,
      body: JSON.stringify(toWireChatRequest(request, true)),
      signal: options.signal,
      traceContext: options.traceContext,
      spanAttributes: { ...genAiRequestAttributes('chat', request.model, request.maxTokens), 'gen_ai.request.stream': true },
    });
    const traceId = headerValue(stream.headers, TRACE_ID_HEADER);
    const assembler = new ChatStreamAssembler(request.model, traceId);
    let result: CompletionResult | undefined;
    try {
      for await (const data of readSseData(stream.body)) {
        if (data === '[DONE]') {
          result = assembler.finish();
          break;
        }
        const event = assembler.add(data);
        if (event) yield event;
      }
      // EOF without `[DONE]`: DeepSeek's own client calls this a truncation, and so do we.
      if (!result) throw streamTruncated(traceId);
      this.#counted('chat', result);
    } catch (error) {
      throw stream.settle(error);
    } finally {
      stream.close();
    }
    yield { type: 'finish', result };
  }

  /** `GET /models`. */
  models(options: CallOptions = {}): Promise<ModelInfo[]> {
    return this.#transport.request({
      method: 'GET',
      path: PATHS.models,
      headers: { accept: 'application/json' },
      signal: options.signal,
      traceContext: options.traceContext,
      consume: json(fromWireModelList),
    });
  }

  /** `GET /user/balance`. */
  balance(options: CallOptions = {}): Promise<Balance> {
    return this.#transport.request({
      method: 'GET',
      path: PATHS.balance,
      headers: { accept: 'application/json' },
      signal: options.signal,
      traceContext: options.traceContext,
      consume: json(fromWireBalance),
    });
  }

  /** Breaker, bulkhead, pool and key state, for the GraphQL `upstream` field and `/readyz`. */
  status(): TransportStatus {
    return this.#transport.status();
  }

  /** Tokens and estimated cost of a completion DeepSeek produced (and billed). */
  #counted(operation: GenAiOperation, result: CompletionResult): CompletionResult {
    this.#usage.record({ operation, model: result.model, usage: result.usage });
    return result;
  }

  /** Aborts calls in flight and closes the undici pool. */
  close(): Promise<void> {
    return this.#transport.close();
  }
}
