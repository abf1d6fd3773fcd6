import {
  GraphQLError,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
  Kind,
  type DocumentNode,
  type OperationDefinitionNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationRule,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import { ErrorCode, isErrorCode } from '../errors';

/**
 * What Apollo does for an HTTP request, for the streaming transports (graphql-ws over
 * WebSocket, graphql-sse over HTTP): checking a subscribe payload (parse, validation with
 * the query limits, operation, variables) with Apollo's codes, and error formatting
 * through the same `formatError` as Apollo.
 */

export type FormatError = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

export interface SubscribePayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

export type PreparedSubscription =
  | { errors: GraphQLError[] }
  | {
      document: DocumentNode;
      operationName: string | undefined;
      variableValues: Record<string, unknown> | undefined;
      /** `variableValues` as graphql-js coerced them here (see `CheckedVariables`). */
      coercedVariables: Record<string, unknown>;
      /** The name of the operation the document resolved to (for telemetry), if it has one. */
      resolvedName: string | undefined;
      /** The subscription's root field (a subscription has exactly one). */
      rootField: string | undefined;
    };

/** Documents longer than this are parsed and validated every time, never kept. */
export const VALID_DOCUMENT_MAX_CHARS = 64 * 1024;

/**
 * Documents that parsed and passed validation, by their text, as Apollo's own document
 * store keeps them for HTTP: a subscription sent again (a frontend sends the same few
 * documents over and over) skips parse and validation, which were most of a stream's
 * set-up. The schema and the validation rules never change in a process, so a document
 * valid once stays valid. Bounded by `maxEntries` and by an estimate of the ASTs' size
 * (eight bytes per character of text); a document that failed is never kept.
 */
export class ValidDocuments {
  readonly #documents: LRUCache<string, DocumentNode>;

  constructor(maxEntries: number, maxBytes: number) {
    this.#documents = new LRUCache({ max: maxEntries, maxSize: maxBytes, sizeCalculation: (_document, query) => query.length * 8 });
  }

  get size(): number {
    return this.#documents.size;
  }

  get(query: string): DocumentNode | undefined {
    return this.#documents.get(query);
  }

  keep(query: string, document: DocumentNode): void {
    if (query.length <= VALID_DOCUMENT_MAX_CHARS) this.#documents.set(query, document);
  }
}

export interface DocumentChecks {
  rules: readonly ValidationRule[];
  parse: ParseOptions;
  /** Where documents that passed are kept; without it every payload is parsed and validated. */
  documents?: ValidDocuments;
}

/**
 * Parses, validates (with the query limits) and resolves the operation; only subscription
 * operations are accepted (`transport` names where queries belong in the message). Errors
 * carry Apollo's request-level codes.
 */
export function prepareSubscription(
  schema: GraphQLSchema,
  checks: DocumentChecks,
  payload: SubscribePayload,
  transport: string,
): PreparedSubscription {
  let document = checks.documents?.get(payload.query);
  if (!document) {
    try {
      document = parse(payload.query, checks.parse);
    } catch (error) {
      if (error instanceof GraphQLError) return { errors: [withCode(error, ErrorCode.GRAPHQL_PARSE_FAILED)] };
      throw error;
    }
    const invalid = validate(schema, document, [...specifiedRules, ...checks.rules]);
    if (invalid.length > 0) return { errors: invalid.map((error) => withCode(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)) };
    checks.documents?.keep(payload.query, document);
  }
  const operation = getOperationAST(document, payload.operationName);
  if (!operation) {
    const message = payload.operationName
      ? `Unknown operation named "${payload.operationName}".`
      : 'Must provide operation name if query contains multiple operations.';
    return { errors: [new GraphQLError(message, { extensions: { code: ErrorCode.OPERATION_RESOLUTION_FAILURE } })] };
  }
  if (operation.operation !== 'subscription') {
    return {
      errors: [
        new GraphQLError(`Only subscriptions are served over ${transport}; send queries and mutations over HTTP to /graphql.`, {
          extensions: { code: ErrorCode.BAD_REQUEST },
        }),
      ],
    };
  }
  const variables = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}, { maxErrors: 50 });
  if (variables.errors) return { errors: variables.errors.map((error) => withCode(error, ErrorCode.BAD_USER_INPUT)) };
  return {
    document,
    operationName: payload.operationName ?? undefined,
    variableValues: payload.variables ?? undefined,
    coercedVariables: variables.coerced,
    resolvedName: operation.name?.value,
    rootField: rootFieldOf(operation),
  };
}

/**
 * Request-level errors we coded ourselves (parse, validation, variables) are kept as they
 * are; for anything else the original error decides (a GatewayError keeps its code, the
 * rest is masked).
 */
export function formatErrors(formatError: FormatError, errors: readonly GraphQLError[]): GraphQLFormattedError[] {
  return errors.map((error) =>
    formatError(error.toJSON(), isErrorCode(error.extensions.code) ? error : (error.originalError ?? error)),
  );
}

/** A copy of a request-level error with Apollo's code for it. */
function withCode(error: GraphQLError, code: ErrorCode): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...error.extensions, code },
  });
}

/** The first root field of an operation (`__typename` aside), fragments looked through inline. */
function rootFieldOf(operation: OperationDefinitionNode): string | undefined {
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind === Kind.FIELD && selection.name.value !== '__typename') return selection.name.value;
  }
  return undefined;
}
