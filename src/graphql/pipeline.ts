import {
  GraphQLError,
  type ExecutionArgs,
  type DocumentNode,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationRule,
} from 'graphql';
import { HeaderMap } from '@apollo/server';
import { SCOPES, hasScope, type Caller } from '../auth';
import { ForbiddenError, QuotaExceededError, UnauthenticatedError } from '../errors';
import { subscriptionRefusal } from './authorization';
import type { QuotaAccount } from '../quotas';
import type { Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { OperationObserver, type HeaderReader, type ObservedOperation, type OperationTransport } from '../telemetry/operation-observer';
import type { GatewayServices, GraphQLContext } from './context';
import { CompletionBudget, checkRawOperation, parseOptions, queryLimitRules, queryLimits, type QueryLimits, type RawOperation } from './limits';
import { formatErrors, prepareSubscription, ValidDocuments, type DocumentChecks, type FormatError, type SubscribePayload } from './prepare-operation';
import type { AbortSignalLike } from '../lib/abort';

/** How one transport hands an operation to the pipeline. */
export interface OperationInit {
  transport: OperationTransport;
  /** The operation's logger, already carrying the transport's request or subscription id. */
  logger: Logger;
  /** Aborted when the client goes away (see src/http/disconnect.ts). */
  signal: AbortSignalLike;
  /** Request headers (W3C `traceparent`); for WebSocket, those the subscribe message's `extensions` or the `connection_init` payload carry. */
  headers?: HeaderReader;
  /** The operation as received (document, name, variables, extensions), checked before anything is parsed. */
  raw?: RawOperation;
  /** The `Authorization` header (HTTP, SSE) or the graphql-ws `connection_init` equivalent. */
  authorization?: string;
  /** The client's address: the subject of a caller without a token. */
  address: string;
  /** A caller the transport already authenticated (a WebSocket connection's). */
  caller?: Caller;
  /**
   * An in-process warm-up operation (src/http/warmup.ts): `caller` is the warm-up caller,
   * no quota counts it, and telemetry records no metric or log line for it.
   */
  warmup?: boolean;
  /**
   * The services this operation's resolvers run on, if not the gateway's: those of the
   * warm-up's DeepSeek stand-in (src/warmup-stand-in.ts) for a warm-up cache miss or stream.
   */
  services?: GatewayServices;
}

/** What marks an in-process warm-up operation (src/http/warmup.ts); the HTTP edge decides it from the request's headers. */
export type WarmUpInit = Pick<OperationInit, 'warmup' | 'caller' | 'services'>;

/** An operation `OperationPipeline.admit` let in: its telemetry, caller, quota account and cache scope. */
export interface Admitted {
  operation: ObservedOperation;
  caller: Caller;
  quota: QuotaAccount | undefined;
  cacheScope: string | undefined;
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

/**
 * Subscription documents kept parsed and validated (src/graphql/prepare-operation.ts): as
 * many as a frontend fleet sends, and an estimated 16 MiB of ASTs at most, like Apollo's
 * own store for HTTP documents.
 */
const VALID_DOCUMENTS_MAX_ENTRIES = 1000;
const VALID_DOCUMENTS_MAX_BYTES = 16 * 1024 * 1024;

/** Where queries and mutations belong, named in the refusal a streaming transport sends. */
const TRANSPORT_NAMES: Record<OperationTransport, string> = {
  http: 'HTTP',
  websocket: 'WebSocket',
  sse: 'GraphQL over SSE',
  multipart: 'multipart HTTP subscriptions',
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
  /** How subscribe payloads are checked: the limits, and the documents already found valid. */
  readonly #checks: DocumentChecks;

  constructor(
    readonly schema: GraphQLSchema,
    readonly services: GatewayServices,
    readonly formatError: FormatError,
    instruments: Instruments,
  ) {
    this.limits = queryLimits(services.config.graphql);
    this.limitRules = queryLimitRules(this.limits);
    this.parseOptions = parseOptions(this.limits);
    this.#checks = {
      rules: this.limitRules,
      parse: this.parseOptions,
      documents: new ValidDocuments(VALID_DOCUMENTS_MAX_ENTRIES, VALID_DOCUMENTS_MAX_BYTES),
    };
    this.#observer = new OperationObserver(instruments, services.config.deepseek.prices);
  }

  /**
   * Starts one operation and builds its context, whatever the transport: checks what can
   * be checked before parsing (`checkRawOperation`), learns who is calling (the bearer
   * token; WebSocket passes the caller its connection authenticated), resolves a trusted
   * document. A refusal ends the operation at once and is thrown as a GraphQLError with
   * its code and HTTP status (401 with `WWW-Authenticate` for bad credentials), which
   * Apollo sends as is. `raw` is the operation as received (default `init.raw`).
   */
  async begin(init: OperationInit, raw: RawOperation | undefined = init.raw): Promise<GraphQLContext> {
    return this.open(await this.admit(init, raw), init);
  }

  /**
   * The first half of `begin`: starts the operation in telemetry and admits it (limits,
   * caller, trusted document, `requestsPerMinute`), or ends it and throws its refusal. The
   * HTTP edge admits a request this way before it knows whether a hot answer
   * (src/graphql/hot-answers.ts) will serve it, and opens its context only if not.
   */
  async admit(init: Omit<OperationInit, 'signal'>, raw: RawOperation | undefined = init.raw): Promise<Admitted> {
    const { services } = this;
    const operation = this.#observer.start({ transport: init.transport, headers: init.headers, logger: init.logger, silent: init.warmup });
    try {
      const limitRefusal = raw && checkRawOperation(raw, this.limits);
      if (limitRefusal) throw limitRefusal;
      const caller = init.caller ?? (await services.authenticator.authenticate({ authorization: init.authorization, address: init.address }));
      operation.identify(caller.tenant);
      if (caller.expiresAt !== undefined && caller.expiresAt <= Date.now()) throw new UnauthenticatedError('expired');
      // Only a verified administrator may send free-form documents past a safelist (with
      // AUTH_MODE=none everyone holds every scope, and the safelist must still hold), and
      // the in-process warm-up, whose documents are the gateway's own.
      const trusted = init.warmup === true || (caller.kind === 'token' && hasScope(caller, SCOPES.admin));
      const documentRefusal = raw && services.persistedDocuments?.resolve(raw, trusted);
      if (documentRefusal) throw documentRefusal;
      // Counted once the operation is known to be well-formed and allowed: a refused
      // document never uses up the caller's requestsPerMinute.
      const quota = init.warmup ? undefined : services.quotas?.account(caller, (limit) => operation.refusedBy(limit));
      await quota?.admitOperation();
      const cacheScope = services.config.cache.scope === 'tenant' ? caller.tenant : undefined;
      return { operation, caller, quota, cacheScope };
    } catch (error) {
      const refusal = asRefusal(error);
      operation.end({ status: (refusal.extensions.http as { status?: number } | undefined)?.status ?? 400, codes: [String(refusal.extensions.code)] });
      throw refusal;
    }
  }

  /** The second half of `begin`: the admitted operation's context (loaders, budget, signal). */
  open(admitted: Admitted, init: OperationInit): GraphQLContext {
    const services = init.services ?? this.services;
    const { operation, caller, quota, cacheScope } = admitted;
    return {
      services,
      caller,
      cacheScope,
      operation,
      quota,
      loaders: services.completions.createLoaders({
        signal: init.signal,
        ledger: operation.ledger,
        traceContext: operation.traceContext,
        cacheScope,
        quota,
      }),
      logger: init.logger,
      signal: init.signal,
      budget: new CompletionBudget(services.config.graphql.maxCompletionsPerOperation),
    };
  }

  /** The parsed document of `query` if a subscription sent it before and it passed validation. */
  validDocument(query: string): DocumentNode | undefined {
    return this.#checks.documents?.get(query);
  }

  /**
   * A subscribe message of a streaming transport: starts the operation and checks the
   * payload as Apollo checks an HTTP request. A refused payload ends the operation at once;
   * its errors come back as they are (`refused`, graphql-ws sends those) and formatted.
   */
  async subscribe(init: OperationInit, payload: SubscribePayload): Promise<Subscribed | Refused> {
    let context: GraphQLContext;
    try {
      // The payload as the operation's raw form, passed beside `init` rather than in a spread
      // copy of it, which Node 20's V8 makes slowly (see `withRequest` in src/transport).
      context = await this.begin(init, payload);
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      return { refused: [error], errors: this.format([error]) };
    }
    const prepared = prepareSubscription(this.schema, this.#checks, payload, TRANSPORT_NAMES[init.transport]);
    if ('errors' in prepared) {
      const errors = this.format(prepared.errors);
      context.operation.end({ codes: codesOf(errors) });
      return { refused: prepared.errors, errors };
    }
    context.operation.resolved('subscription', prepared.resolvedName);
    const forbidden = subscriptionRefusal(this.schema, prepared.rootField, context.caller);
    if (forbidden) {
      const refused = [asRefusal(forbidden)];
      const errors = this.format(refused);
      context.operation.end({ status: forbidden.code === 'UNAUTHENTICATED' ? 401 : 403, codes: codesOf(errors) });
      return { refused, errors };
    }
    const { document, operationName, variableValues } = prepared;
    // Coerced once: subscribeEvents takes them instead of coercing them twice more.
    context.checkedVariables = { document, raw: variableValues, coerced: prepared.coercedVariables };
    return { context, args: { schema: this.schema, document, operationName, variableValues, contextValue: context } };
  }

  /**
   * A subscription a transport refuses before checking its payload (e.g. too many on one
   * connection): recorded as an operation like any other, and its errors formatted.
   */
  async reject(init: OperationInit, error: GraphQLError): Promise<Refused> {
    const context = await this.begin(init);
    const errors = this.format([error]);
    context.operation.end({ codes: codesOf(errors) });
    return { refused: [error], errors };
  }

  /**
   * One result of a running subscription: its errors formatted (and counted), and, on the
   * last event (see `GraphQLContext.lastEvent`), what the operation cost as
   * `extensions.cost`, as a query's response carries it; undefined when it is sent as is.
   */
  next(context: GraphQLContext, result: ExecutionResult): FormattedExecutionResult | undefined {
    const hasErrors = result.errors !== undefined && result.errors.length > 0;
    const errors = hasErrors ? this.format(result.errors!) : [];
    context.operation.result(codesOf(errors));
    const last = context.lastEvent === true;
    context.lastEvent = false;
    if (!hasErrors && !last) return undefined;
    const { errors: _raw, ...rest } = result;
    const formatted: FormattedExecutionResult = hasErrors ? { ...rest, errors } : rest;
    if (last) formatted.extensions = { ...result.extensions, cost: context.operation.ledger.finish() };
    return formatted;
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

/**
 * A refusal as Apollo sends it: a GraphQLError with its public code, and its HTTP status
 * (and, for credentials, the RFC 6750 `WWW-Authenticate` challenge) in `extensions.http`.
 */
function asRefusal(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  if (error instanceof UnauthenticatedError || error instanceof ForbiddenError) {
    // Apollo reads `http.headers` as a HeaderMap. Typed loosely: a package that augments
    // graphql's extension type (GraphQL Yoga, under the router test) types it as a record.
    const extensions: Record<string, unknown> = {
      ...error.extensions,
      code: error.code,
      http: { status: error.httpStatus, headers: new HeaderMap([['www-authenticate', error.wwwAuthenticate]]) },
    };
    return new GraphQLError(error.message, { originalError: error, extensions });
  }
  if (error instanceof QuotaExceededError) return quotaRefusal(error);
  throw error;
}

/**
 * A quota refusal of a whole operation as Apollo sends it: HTTP 429 with `Retry-After`
 * (whole seconds), `extensions.limit` and `extensions.retryAfterMs`.
 */
export function quotaRefusal(error: QuotaExceededError): GraphQLError {
  const extensions: Record<string, unknown> = {
    ...error.extensions,
    code: error.code,
    http: { status: 429, headers: new HeaderMap([['retry-after', String(error.retryAfterSeconds)]]) },
  };
  return new GraphQLError(error.message, { originalError: error, extensions });
}

/** `extensions.code` of each formatted error (public codes). */
export function codesOf(errors: readonly GraphQLFormattedError[]): string[] {
  return errors.map((error) => {
    const code = error.extensions?.code;
    return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
  });
}
