import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import type { GraphQLError, ValidationContext, ValidationRule } from 'graphql';
import type { Config } from '../config';
import { BadUserInputError } from '../errors';

/**
 * Validation rules (graphql-armor) that refuse abusive documents before anything runs:
 * too deep a selection, or too many aliases (each aliased completion may be one DeepSeek
 * call). Used for HTTP operations and WebSocket subscriptions alike; a refusal is a
 * GRAPHQL_VALIDATION_FAILED error.
 */
export function queryLimitRules(limits: Config['graphql']): ValidationRule[] {
  // Report, don't throw: a thrown error inside validation is an unexpected failure to
  // Apollo (a masked 500); a reported one is a 400 GRAPHQL_VALIDATION_FAILED.
  const reportError = (context: ValidationContext | null, error: GraphQLError): void => {
    // The rules always pass their context; without one, refusing loudly beats letting it through.
    if (!context) throw error;
    context.reportError(error);
  };
  const report = { propagateOnRejection: false, onReject: [reportError] };
  return [
    maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true, ...report }),
    maxAliasesRule({ n: limits.maxAliases, ...report }),
  ] as ValidationRule[];
}

/**
 * How many completions one operation may still ask for: completion fields and every
 * `completions` list item count, whether or not they end up cached, so the worst case of
 * one operation is bounded before any DeepSeek call. One per operation (context).
 */
export class CompletionBudget {
  #remaining: number;

  constructor(readonly limit: number) {
    this.#remaining = limit;
  }

  /** Takes `count` from the budget or throws BAD_USER_INPUT naming `field`. */
  take(count: number, field: string): void {
    if (count > this.#remaining) {
      throw new BadUserInputError(
        `An operation may ask for at most ${this.limit} completions (fields plus list items); split it into several operations.`,
        field,
      );
    }
    this.#remaining -= count;
  }
}
