import { GraphQLError } from 'graphql';
import { ErrorCode } from '../../errors';
import type { QueryLimits } from './types';

/** What a transport received, before it is parsed. */
export interface RawOperation {
  query?: unknown;
  operationName?: unknown;
  variables?: unknown;
  extensions?: unknown;
}

/** JSON values of the variables looked at per allowed list item, at most, before refusing. */
const NODE_BUDGET_PER_LIST_ITEM = 16;

/**
 * Checks done before a document is parsed or a variable coerced, for every transport:
 * the operation name's length (it would otherwise reach error messages and logs as sent)
 * and the size of every list in the variables (coercing 200,000 `messages` cost seconds of
 * CPU and most of a gigabyte before any check ran). The walk is iterative and bounded, so
 * the check itself costs microseconds whatever was sent. Returns the refusal, or undefined.
 */
export function checkRawOperation(operation: RawOperation, limits: QueryLimits): GraphQLError | undefined {
  const { operationName, variables } = operation;
  if (typeof operationName === 'string' && operationName.length > limits.maxOperationNameLength) {
    return refusal(
      `Operation names may be at most ${limits.maxOperationNameLength} characters long (GRAPHQL_MAX_OPERATION_NAME_LENGTH).`,
      ErrorCode.BAD_REQUEST,
      'GRAPHQL_MAX_OPERATION_NAME_LENGTH',
    );
  }
  if (variables === null || typeof variables !== 'object') return undefined;

  const budget = Math.max(1000, limits.maxListItems * NODE_BUDGET_PER_LIST_ITEM);
  const tooMany = (): GraphQLError =>
    refusal(
      `The variables hold more than ${budget} values; send less per operation (GRAPHQL_MAX_LIST_ITEMS).`,
      ErrorCode.BAD_USER_INPUT,
      'GRAPHQL_MAX_LIST_ITEMS',
    );
  // Every value pushed counts against the budget, so a huge object or list is refused
  // after `budget` steps, never walked whole.
  let visited = 0;
  const pending: Array<{ value: object; path: string }> = [{ value: variables, path: '' }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (Array.isArray(value)) {
      if (value.length > limits.maxListItems) {
        return refusal(
          `A list may hold at most ${limits.maxListItems} items (GRAPHQL_MAX_LIST_ITEMS); variable ${path.slice(1) || '(root)'} has ${value.length}.`,
          ErrorCode.BAD_USER_INPUT,
          'GRAPHQL_MAX_LIST_ITEMS',
          path.slice(1),
        );
      }
      for (let index = 0; index < value.length; index++) {
        if (++visited > budget) return tooMany();
        const child: unknown = value[index];
        if (child !== null && typeof child === 'object') pending.push({ value: child, path: `${path}[${index}]` });
      }
    } else {
      for (const key in value) {
        if (++visited > budget) return tooMany();
        const child: unknown = (value as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') pending.push({ value: child, path: `${path}.${key.slice(0, 64)}` });
      }
    }
  }
  return undefined;
}

function refusal(message: string, code: ErrorCode, limit: string, field?: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code, limit, ...(field ? { field } : {}), http: { status: 400 } },
  });
}
