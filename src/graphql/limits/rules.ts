import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import {
  GraphQLError,
  Kind,
  type ASTNode,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { subscriptionRootDirectivesRule } from './subscription-root';
import type { QueryLimits } from './types';

/** Where a refusal names the limit it hit (the configuration variable). */
function limitError(message: string, limit: string, node?: ASTNode): GraphQLError {
  return new GraphQLError(message, { nodes: node ? [node] : undefined, extensions: { limit } });
}

/**
 * Validation rules that refuse abusive documents before anything runs, for HTTP,
 * WebSocket and SSE alike (a refusal is GRAPHQL_VALIDATION_FAILED naming the limit):
 * too deep a selection, too many aliases (each aliased completion may be one DeepSeek
 * call; `__typename` is no exception), too many fields once fragments are expanded, and
 * an operation name longer than a metric label or log field should carry. The number of
 * tokens is bounded earlier, by the parser (`parseOptions`).
 */
export function queryLimitRules(limits: QueryLimits): ValidationRule[] {
  // Report, don't throw: a thrown error inside validation is an unexpected failure to
  // Apollo (a masked 500); a reported one is a 400 GRAPHQL_VALIDATION_FAILED.
  const reportAs = (limit: string) => (context: ValidationContext | null, error: GraphQLError): void => {
    // The rules always pass their context; without one, refusing loudly beats letting it through.
    if (!context) throw error;
    context.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { nodes: error.nodes, extensions: { limit } }));
  };
  return [
    maxDepthRule({
      n: limits.maxDepth,
      ignoreIntrospection: true,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: [reportAs('GRAPHQL_MAX_DEPTH')],
    }),
    // graphql-armor exempts `__typename` by default; 300,000 aliased `__typename`s froze
    // the process, so nothing is exempt here.
    maxAliasesRule({ n: limits.maxAliases, allowList: [], propagateOnRejection: false, onReject: [reportAs('GRAPHQL_MAX_ALIASES')] }),
    maxFieldsRule(limits.maxFields),
    operationNameRule(limits.maxOperationNameLength),
    // Not a limit: it keeps graphql-js's own SingleFieldSubscriptionsRule from throwing.
    subscriptionRootDirectivesRule,
  ] as ValidationRule[];
}

/**
 * At most `max` field selections per operation, counting every field a fragment spread
 * brings (so fragments that spread each other cannot multiply fields unseen);
 * introspection (`__schema`, `__type`) is not counted. Each fragment is counted once and
 * its count reused, so the rule's own cost is linear in the document.
 */
export function maxFieldsRule(max: number): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const fragmentCounts = new Map<string, number>();
    const countFragment = (fragment: FragmentDefinitionNode, visiting: Set<string>): number => {
      const known = fragmentCounts.get(fragment.name.value);
      if (known !== undefined) return known;
      // A cycle is NoFragmentCyclesRule's to report; it adds nothing here.
      if (visiting.has(fragment.name.value)) return 0;
      visiting.add(fragment.name.value);
      const count = countSelections(fragment.selectionSet, visiting);
      visiting.delete(fragment.name.value);
      fragmentCounts.set(fragment.name.value, count);
      return count;
    };
    const countSelections = (selectionSet: SelectionSetNode, visiting: Set<string>): number => {
      let count = 0;
      for (const selection of selectionSet.selections) {
        if (selection.kind === Kind.FIELD) {
          if (selection.name.value === '__schema' || selection.name.value === '__type') continue;
          count += 1;
          if (selection.selectionSet) count += countSelections(selection.selectionSet, visiting);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          count += countSelections(selection.selectionSet, visiting);
        } else {
          const fragment = context.getFragment(selection.name.value);
          if (fragment) count += countFragment(fragment, visiting);
        }
        // Saturate: past the limit the exact figure does not matter.
        if (count > max) return count;
      }
      return count;
    };
    return {
      OperationDefinition(operation) {
        const count = countSelections(operation.selectionSet, new Set());
        if (count > max) {
          context.reportError(
            limitError(`Field limit of ${max} exceeded (GRAPHQL_MAX_FIELDS): the operation selects more fields.`, 'GRAPHQL_MAX_FIELDS', operation),
          );
        }
      },
    };
  };
}

/** Operation names become span names, log fields and metric labels: bound their length. */
export function operationNameRule(maxLength: number): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const name = operation.name?.value;
      if (name && name.length > maxLength) {
        context.reportError(
          limitError(
            `Operation names may be at most ${maxLength} characters long (GRAPHQL_MAX_OPERATION_NAME_LENGTH).`,
            'GRAPHQL_MAX_OPERATION_NAME_LENGTH',
            operation.name,
          ),
        );
      }
    },
  });
}
