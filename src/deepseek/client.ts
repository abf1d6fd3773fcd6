import type { Logger } from 'pino';
import type { Config } from '../config';
import { UnreachableCaseError } from '../errors';
import { chain } from '../lib/chain';
import { genAiRequestAttributes, genAiResponseAttributes, type GenAiOperation } from '../telemetry/gen-ai';
import { noopInstruments, type Instruments } from '../telemetry/instruments';
import { usageMetrics, type UsageMetrics } from '../telemetry/metrics';
import {
  Transport,
  headerValue,
  type TransportStatus,
  type TransportTuning,
  type UpstreamHandler,
  type UpstreamRequest,
  type UpstreamResponse,
} from '../transport';
import { errorTypeOf, publicError, streamBodyFailure, streamTruncated } from './classify-error';
import { readJsonBody } from './json-body';
import { JSON_HEADERS, PATHS, RETRYABLE_STATUSES, SSE_HEADERS, TRACE_ID_HEADER } from './provider';
import { toWireChatRequest, toWireFimRequest } from './request-body';
import { fromWireBalance, fromWireChatCompletion, fromWireFimCompletion, fromWireModelList } from './response';
import { readSseData } from './sse-stream';
import { ChatStreamAssembler, FimStreamAssembler, type StreamAssembler } from './stream-assembler';
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

/**
 * Reads a JSON response and maps it, with the response's trace id. Runs inside the
 * transport, so a body it cannot use throws a retryable `invalid-response` TransportError.
 */
function json<T>(map: (json: unknown, traceId: string | undefined) => T) {
  return async ({ headers, body }: UpstreamResponse): Promise<T> => {
    const traceId = headerValue(headers, TRACE_ID_HEADER);
    return map(await readJsonBody(body, traceId), traceId);
  };
}

/** Span attributes of a finished completion: usage, response model and DeepSeek's trace id. */
function describeCompletion(result: CompletionResult) {
  return { ...genAiResponseAttributes(result), ...(result.traceId ? { 'upstream.trace_id': result.traceId } : {}) };
}

/** The upstream request for a DeepSeek call: built once, never changed by the transport. */
function upstreamRequest(
  fields: Pick<UpstreamRequest, 'method' | 'path' | 'headers' | 'body' | 'spanAttributes'> & { stream?: boolean },
  options: CallOptions,
): UpstreamRequest {
  // Field by field, not `{ ...fields, … }` (see `withRequest` in src/transport/types.ts).
  return {
    method: fields.method,
    path: fields.path,
    headers: fields.headers,
    body: fields.body,
    spanAttributes: fields.spanAttributes,
    stream: fields.stream ?? false,
    signal: options.signal,
    traceContext: options.traceContext,
  };
}

/**
 * The typed DeepSeek client: maps `types.ts` requests to DeepSeek's wire format and
 * back, over the resilient transport. Every failure reaches the caller as an
 * `UpstreamError` (or `OverloadedError`, or the caller's own abort reason), mapped from the
 * transport's `TransportError` in one place (`classify-error.ts`).
 */
export class DeepSeekClient implements DeepSeekApi {
  readonly #transport: Transport;
  readonly #usage: UsageMetrics;

  constructor(options: DeepSeekClientOptions) {
    const instruments = options.instruments ?? noopInstruments();
    this.#usage = usageMetrics(options.config.prices, instruments.meter);
    this.#transport = new Transport({
      settings: options.config,
      logger: options.logger,
      traceIdHeader: TRACE_ID_HEADER,
      retryableStatuses: RETRYABLE_STATUSES,
      errorType: errorTypeOf,
      tuning: options.tuning,
      instruments,
    });
  }

  /**
   * `POST /chat/completions`. A `finishReason` of `insufficient_system_resource` comes back
   * as a result like any other; callers must not cache it.
   */
  chat(request: ChatRequest, options: CallOptions = {}): Promise<CompletionResult> {
    // Chains, not async frames held for the whole call (see `chain`).
    return chain(
      () =>
        this.#call(
          upstreamRequest(
            {
              method: 'POST',
              path: PATHS.chat,
              headers: JSON_HEADERS,
              body: JSON.stringify(toWireChatRequest(request, false)),
              spanAttributes: genAiRequestAttributes('chat', request.model, request.maxTokens),
            },
            options,
          ),
          { onResponse: json(fromWireChatCompletion), describe: describeCompletion },
        ),
      (result) => this.#counted('chat', result),
    );
  }

  /** `POST /beta/completions` (fill in the middle). */
  fim(request: FimRequest, options: CallOptions = {}): Promise<CompletionResult> {
    return chain(
      () =>
        this.#call(
          upstreamRequest(
            {
              method: 'POST',
              path: PATHS.fim,
              headers: JSON_HEADERS,
              body: JSON.stringify(toWireFimRequest(request, false)),
              spanAttributes: genAiRequestAttributes('text_completion', request.model, request.maxTokens),
            },
            options,
          ),
          { onResponse: json(fromWireFimCompletion), describe: describeCompletion },
        ),
      (result) => this.#counted('text_completion', result),
    );
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
   * assembled result. Retries, breaker, bulkhead and keys apply to opening the stream only;
   * the stream lifetime bounds the rest. Leaving the loop early (break, return, throw)
   * aborts the upstream request.
   */
  chatStream(request: ChatRequest, options: CallOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    return this.#stream(
      'chat',
      {
        path: PATHS.chat,
        body: JSON.stringify(toWireChatRequest(request, true)),
        spanAttributes: Object.assign(genAiRequestAttributes('chat', request.model, request.maxTokens), { 'gen_ai.request.stream': true }),
      },
      (traceId) => new ChatStreamAssembler(request.model, traceId),
      options,
    );
  }

  /**
   * Streams a FIM completion (`POST /beta/completions`, `stream: true`): the same events as
   * `chatStream`, the text from each chunk's `choices[0].text`, the usage from the last
   * chunk before `[DONE]`. Same retry, lifetime and abort rules.
   */
  fimStream(request: FimRequest, options: CallOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    return this.#stream(
      'text_completion',
      {
        path: PATHS.fim,
        body: JSON.stringify(toWireFimRequest(request, true)),
        spanAttributes: Object.assign(genAiRequestAttributes('text_completion', request.model, request.maxTokens), { 'gen_ai.request.stream': true }),
      },
      (traceId) => new FimStreamAssembler(request.model, traceId),
      options,
    );
  }

  completeStream(request: CompletionRequest, options?: CallOptions): AsyncGenerator<StreamEvent, void, undefined> {
    switch (request.kind) {
      case 'chat':
        return this.chatStream(request, options);
      case 'fim':
        return this.fimStream(request, options);
      default:
        throw new UnreachableCaseError(request);
    }
  }

  /** `GET /models`. */
  models(options: CallOptions = {}): Promise<ModelInfo[]> {
    return this.#call(
      upstreamRequest({ method: 'GET', path: PATHS.models, headers: { accept: 'application/json' } }, options),
      { onResponse: json(fromWireModelList) },
    );
  }

  /** `GET /user/balance`. */
  balance(options: CallOptions = {}): Promise<Balance> {
    return this.#call(
      upstreamRequest({ method: 'GET', path: PATHS.balance, headers: { accept: 'application/json' } }, options),
      { onResponse: json(fromWireBalance) },
    );
  }

  /** Breaker, bulkhead, pool and key state, for the GraphQL `upstream` field and `/readyz`. */
  status(): TransportStatus {
    return this.#transport.status();
  }

  /**
   * One streamed completion: opens the SSE response through the transport, then reads it
   * outside the transport, so the exchange ends when the body closes. EOF without `[DONE]`
   * (or without a finish reason) is a truncation, as DeepSeek's own client calls it.
   */
  async *#stream(
    operation: GenAiOperation,
    call: Pick<UpstreamRequest, 'path' | 'body' | 'spanAttributes'>,
    assemble: (traceId: string | undefined) => StreamAssembler,
    options: CallOptions,
  ): AsyncGenerator<StreamEvent, void, undefined> {
    let attempts = 0;
    const response = await this.#call(
      upstreamRequest({ method: 'POST', path: call.path, body: call.body, spanAttributes: call.spanAttributes, headers: SSE_HEADERS, stream: true }, options),
      {
        onExchange: () => {
          attempts += 1;
        },
        // The body is read below, outside the transport; the exchange ends when it closes.
        onResponse: async (opened) => opened,
      },
    );
    const { body } = response;
    const traceId = headerValue(response.headers, TRACE_ID_HEADER);
    const assembler = assemble(traceId);
    let result: CompletionResult | undefined;
    try {
      for await (const data of readSseData(body)) {
        if (data === '[DONE]') {
          result = assembler.finish();
          break;
        }
        const event = assembler.add(data);
        if (event) yield event;
      }
      if (!result) throw streamTruncated(traceId);
      this.#counted(operation, result);
    } catch (error) {
      const failure = streamBodyFailure(error, options.signal, attempts);
      // Ends the exchange with the failure, so the call's and the attempt's telemetry see it.
      body.destroy(failure);
      throw publicError(failure);
    } finally {
      if (!body.destroyed) body.destroy();
    }
    yield { type: 'finish', result };
  }

  /** Tokens and estimated cost of a completion DeepSeek produced (and billed). */
  #counted(operation: GenAiOperation, result: CompletionResult): CompletionResult {
    this.#usage.record({ operation, model: result.model, usage: result.usage });
    return result;
  }

  /** One call through the transport; its failure as the public error. */
  #call<T>(request: UpstreamRequest, handler: UpstreamHandler<T>): Promise<T> {
    return chain(
      () => this.#transport.request(request, handler),
      undefined,
      (error) => {
        throw publicError(error);
      },
    );
  }

  /** Aborts calls in flight and closes the undici pool. */
  close(): Promise<void> {
    return this.#transport.close();
  }
}
