import {
  GraphQLError,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationRule,
} from 'graphql';
import type { Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { OperationObserver, type HeaderReader, type OperationTransport } from '../telemetry/operation-observer';
import type { GatewayServices, GraphQLContext } from './context';
import { CompletionBudget, checkRawOperation, parseOptions, queryLimitRules, queryLimits, type QueryLimits, type RawOperation } from './limits';
import { formatErrors, prepareSubscription, type FormatError, type SubscribePayload } from './prepare-operation';

/** How one transport hands an operation to the pipeline. */
export interface OperationInit {
  transport: OperationTransport;
  /** The operation's logger, already carrying the transport's request or subscription id. */
  logger: Logger;
  /** Aborted when the client goes away (see src/http/disconnect.ts). */
  signal: AbortSignal;
  /** Request headers (W3C `traceparent`); WebSocket messages have none. */
  headers?: HeaderReader;
  /** The operation as received (name, variables), checked before anything is parsed. */
  raw?: RawOperation;
}

/** A checked subscribe payload, ready for graphql-js, with its operation's context. */
export interface Subscribed {
  context: GraphQLContext;
  args: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName' | 'variableValues'> & { contextValue: GraphQLContext };
}

/** A subscribe payload the pipeline refused (parse, validation, not a subscription, variables). */
export interface Refused {
  refused: GraphQLError[];
  errors: GraphQLFormattedError[];
}

/** Where queries and mutations belong, named in the refusal a streaming transport sends. */
const TRANSPORT_NAMES: Record<OperationTransport, string> = {
  http: 'HTTP',
  websocket: 'WebSocket',
  sse: 'GraphQL over SSE',
};

/**
 * The ONE operation pipeline. Every transport (Apollo over HTTP, graphql-ws over
 * WebSocket, graphql-sse over HTTP) starts an operation with `begin`, which builds its
 * context (loaders, completion budget, signal, logger) and starts it in the one telemetry
 * observer; so a check, a limit or an attribute added here applies to all three.
 *
 * HTTP operations then flow through Apollo (its plugin `operationPlugin` reports what the
 * document resolved to and ends the operation); subscriptions flow through `subscribe`,
 * `next` and `complete`, which do for the streaming transports what Apollo does for HTTP:
 * the same validation with the same limits, the same error formatting, the same telemetry.
 */
export class OperationPipeline {
  readonly limits: QueryLimits;
  readonly limitRules: readonly ValidationRule[];
  readonly parseOptions: ParseOptions;
  readonly #observer: OperationObserver;

  constructor(
    readonly schema: GraphQLSchema,
    readonly services: GatewayServices,
    readonly formatError: FormatError,
    instruments: Instruments,
  ) {
    this.limits = queryLimits(services.config.graphql);
    this.limitRules = queryLimitRules(this.limits);
    this.parseOptions = parseOptions(this.limits);
    this.#observer = new OperationObserver(instruments, services.config.deepseek.prices);
  }

  /**
   * Starts one operation and builds its context. An operation over a limit that can be
   * checked before parsing (`checkRawOperation`) is ended at once and the refusal thrown
   * (a GraphQLError with its code and HTTP status, which Apollo sends as is).
   */
  begin(init: OperationInit): GraphQLContext {
    const { services } = this;
    const operation = this.#observer.start({ transport: init.transport, headers: init.headers, logger: init.logger });
    const refusal = init.raw && checkRawOperation(init.raw, this.limits);
    if (refusal) {
      operation.end({ status: 400, codes: [String(refusal.extensions.code)] });
      throw refusal;
    }
    return {
      services,
      operation,
      loaders: services.completions.createLoaders({
        signal: init.signal,
        ledger: operation.ledger,
        traceContext: operation.traceContext,
      }),
      logger: init.logger,
      signal: init.signal,
      budget: new CompletionBudget(services.config.graphql.maxCompletionsPerOperation),
    };
  }

  /**
   * A subscribe message of a streaming transport: starts the operation and checks the
   * payload as Apollo checks an HTTP request. A refused payload ends the operation at once;
   * its errors come back as they are (`refused`, graphql-ws sends those) and formatted.
   */
  subscribe(init: OperationInit, payload: SubscribePayload): Subscribed | Refused {
    let context: GraphQLContext;
    try {
      context = this.begin({ ...init, raw: payload });
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      return { refused: [error], errors: this.format([error]) };
    }
    const limits = { rules: this.limitRules, parse: this.parseOptions };
    const prepared = prepareSubscription(this.schema, limits, payload, TRANSPORT_NAMES[init.transport]);
    if ('errors' in prepared) {
      const errors = this.format(prepared.errors);
      context.operation.end({ codes: codesOf(errors) });
      return { refused: prepared.errors, errors };
    }
    context.operation.resolved('subscription', prepared.resolvedName);
    const { document, operationName, variableValues } = prepared;
    return { context, args: { schema: this.schema, document, operationName, variableValues, contextValue: context } };
  }

  /**
   * A subscription a transport refuses before checking its payload (e.g. too many on one
   * connection): recorded as an operation like any other, and its errors formatted.
   */
  reject(init: OperationInit, error: GraphQLError): Refused {
    const context = this.begin(init);
    const errors = this.format([error]);
    context.operation.end({ codes: codesOf(errors) });
    return { refused: [error], errors };
  }

  /** One result of a running subscription: its errors formatted (and counted); undefined when it has none. */
  next(context: GraphQLContext, result: ExecutionResult): FormattedExecutionResult | undefined {
    if (!result.errors || result.errors.length === 0) {
      context.operation.result([]);
      return undefined;
    }
    const errors = this.format(result.errors);
    context.operation.result(codesOf(errors));
    return { ...result, errors };
  }

  /** The subscription ended: completed, cut by the client, or failed with `errors`. */
  complete(context: GraphQLContext, errors: readonly GraphQLError[] = []): GraphQLFormattedError[] {
    const formatted = this.format(errors);
    context.operation.end({ codes: codesOf(formatted) });
    return formatted;
  }

  /** Errors shaped exactly as Apollo shapes them over HTTP (codes kept, the unexpected masked). */
  format(errors: readonly GraphQLError[]): GraphQLFormattedError[] {
    return formatErrors(this.formatError, errors);
  }
}

/** `extensions.code` of each formatted error (public codes). */
export function codesOf(errors: readonly GraphQLFormattedError[]): string[] {
  return errors.map((error) => {
    const code = error.extensions?.code;
    return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
  });
}
