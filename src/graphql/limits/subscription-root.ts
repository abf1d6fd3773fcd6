import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type DirectiveNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

/**
 * Refuses `@skip` and `@include` in a subscription's top-level selection (fragments spread
 * there included), as the GraphQL spec's "Single root field" rule now does (and graphql-js
 * 17). graphql-js 16's SingleFieldSubscriptionsRule evaluates those directives with no
 * variables, and `@include` without `if`, or with `if: $var`, makes it THROW instead of
 * report: `validate()` itself threw, and Apollo answered a 500 (graphql-ws closed the
 * socket with 4500). Found by test/e2e/fuzz.test.ts: `subscription { __typename @include }`.
 *
 * Reporting is not enough, since the specified rule would still throw next. So this rule,
 * which sees the whole document before any rule sees an operation (its `Document` handler
 * runs first), reports the error and then ends validation the way graphql-js ends it for a
 * document that costs too much fragment work (`spendFragmentWork` throws the abort that
 * `validate()` catches, adding "Validation aborted."). The result is a 400
 * GRAPHQL_VALIDATION_FAILED over HTTP and a validation refusal over WebSocket and SSE.
 */
export const subscriptionRootDirectivesRule: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  Document(document) {
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'subscription') continue;
      const directive = conditionalDirectiveIn(definition.selectionSet, context, new Set());
      if (!directive) continue;
      const name = definition.name ? `"${definition.name.value}" ` : '';
      context.reportError(
        new GraphQLError(
          `Subscription ${name}must not use "@${directive.name.value}" in its top-level selection: a subscription has exactly one root field, always selected.`,
          { nodes: [directive] },
        ),
      );
      context.spendFragmentWork(Number.POSITIVE_INFINITY);
    }
  },
});

/** The first @skip or @include on the top-level selection (through inline fragments and fragment spreads), if any. */
function conditionalDirectiveIn(selectionSet: SelectionSetNode, context: ValidationContext, visited: Set<string>): DirectiveNode | undefined {
  for (const selection of selectionSet.selections) {
    const directive = selection.directives?.find((node) => node.name.value === 'skip' || node.name.value === 'include');
    if (directive) return directive;
    let nested: SelectionSetNode | undefined;
    if (selection.kind === Kind.INLINE_FRAGMENT) nested = selection.selectionSet;
    if (selection.kind === Kind.FRAGMENT_SPREAD && !visited.has(selection.name.value)) {
      // Each fragment is looked at once (a cycle is NoFragmentCyclesRule's to report).
      visited.add(selection.name.value);
      nested = context.getFragment(selection.name.value)?.selectionSet;
    }
    const found = nested && conditionalDirectiveIn(nested, context, visited);
    if (found) return found;
  }
  return undefined;
}
