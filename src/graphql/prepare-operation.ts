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
      /** The name of the operation the document resolved to (for telemetry), if it has one. */
      resolvedName: string | undefined;
      /** The subscription's root field (a subscription has exactly one). */
      rootField: string | undefined;
    };

/**
 * Parses, validates (with the query limits) and resolves the operation; only subscription
 * operations are accepted (`transport` names where queries belong in the message). Errors
 * carry Apollo's request-level codes.
 */
export function prepareSubscription(
  schema: GraphQLSchema,
  limits: { rules: readonly ValidationRule[]; parse: ParseOptions },
  payload: SubscribePayload,
  transport: string,
): PreparedSubscription {
  let document: DocumentNode;
  try {
    document = parse(payload.query, limits.parse);
  } catch (error) {
    if (error instanceof GraphQLError) return { errors: [withCode(error, ErrorCode.GRAPHQL_PARSE_FAILED)] };
    throw error;
  }
  const invalid = validate(schema, document, [...specifiedRules, ...limits.rules]);
  if (invalid.length > 0) return { errors: invalid.map((error) => withCode(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)) };
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
