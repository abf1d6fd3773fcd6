import {
  getNamedType,
  isObjectType,
  Kind,
  type ConstDirectiveNode,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import { requireScopes, type Caller } from '../auth';
import { GatewayError, UnauthenticatedError } from '../errors';

/**
 * What a field or type asks of its caller, read from the Federation 2 directives in the
 * schema (`@authenticated`, `@requiresScopes(scopes: [[…]])`), so the router enforces the
 * same rules from the supergraph and this subgraph enforces them again for a request that
 * bypasses the router. `anyOf` holds alternatives; each is a set of scopes that must all be
 * held.
 */
export interface Requirement {
  authenticated: boolean;
  anyOf: string[][];
}

const NONE: Requirement = { authenticated: false, anyOf: [] };

type Directed = { astNode?: { directives?: readonly ConstDirectiveNode[] } | null };

/** Each field's and type's requirement, read once: a subscription asks for its root field's on every subscribe. */
const requirements = new WeakMap<Directed, Requirement>();

/** The requirement its own directives put on a field or type. */
export function requirementOf(node: Directed | undefined): Requirement {
  if (!node) return NONE;
  let requirement = requirements.get(node);
  if (!requirement) {
    requirement = readRequirement(node);
    requirements.set(node, requirement);
  }
  return requirement;
}

function readRequirement(node: Directed): Requirement {
  const directives = node.astNode?.directives ?? [];
  let authenticated = false;
  const anyOf: string[][] = [];
  for (const directive of directives) {
    if (directive.name.value === 'authenticated') authenticated = true;
    if (directive.name.value !== 'requiresScopes') continue;
    authenticated = true;
    const argument = directive.arguments?.find((arg) => arg.name.value === 'scopes');
    if (argument?.value.kind !== Kind.LIST) continue;
    for (const group of argument.value.values) {
      if (group.kind !== Kind.LIST) continue;
      anyOf.push(group.values.flatMap((scope) => (scope.kind === Kind.STRING ? [scope.value] : [])));
    }
  }
  return authenticated || anyOf.length > 0 ? { authenticated, anyOf } : NONE;
}

/** Throws UNAUTHENTICATED or FORBIDDEN (naming the missing scopes) unless `caller` meets `requirement`. */
export function authorize(caller: Caller, requirement: Requirement): void {
  if (requirement === NONE) return;
  if (requirement.anyOf.length === 0) {
    if (caller.kind === 'unauthenticated') throw new UnauthenticatedError('missing credentials');
    return;
  }
  // Any alternative that is fully held will do; otherwise report the first one's gaps.
  if (requirement.anyOf.some((scopes) => scopes.every((scope) => caller.scopes.has(scope)))) return;
  requireScopes(caller, ...requirement.anyOf[0]!);
}

/**
 * Enforces the schema's directives in this subgraph: every root field (Query, Mutation,
 * Subscription) with a requirement checks the operation's caller before its resolver (or,
 * for a subscription, before subscribing) runs, so an unauthorized field costs no upstream
 * call and no cache write, and fails alone with UNAUTHENTICATED or FORBIDDEN. A type's own
 * requirement (the `Completion` entity's) is checked where the type is entered without a
 * root field of ours: `_entities`, by each representation's type. (Root fields returning
 * it carry the same scope, so its fields are not checked one by one on the hot path.)
 */
export function enforceAuthorization(schema: GraphQLSchema): void {
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (!root) continue;
    for (const field of Object.values(root.getFields())) {
      const requirement = requirementOf(field);
      if (requirement !== NONE) guard(field, requirement);
    }
  }
  guardNestedEntities(schema);
  guardEntities(schema);
}

/**
 * A field of a non-root type that returns a type with its own requirement (the last
 * chunk's `CompletionChunk.completion`) checks it, as a router applying the supergraph's
 * directives would: a stream-only caller gets that field null with FORBIDDEN, the chunk
 * itself still arrives.
 */
function guardNestedEntities(schema: GraphQLSchema): void {
  const roots = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]);
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || roots.has(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const requirement = requirementOf(getNamedType(field.type));
      if (requirement !== NONE) guard(field, requirement);
    }
  }
}

type WithCaller = { caller: Caller };

function guard(field: GraphQLField<unknown, WithCaller>, requirement: Requirement): void {
  const wrap = (resolver: GraphQLFieldResolver<unknown, WithCaller> | undefined): GraphQLFieldResolver<unknown, WithCaller> | undefined =>
    resolver
      ? (source, args, context, info) => {
          authorize(context.caller, requirement);
          return resolver(source, args, context, info);
        }
      : undefined;
  if (field.subscribe) field.subscribe = wrap(field.subscribe);
  // A field without a resolver reads a property of its parent: guard that too.
  field.resolve = wrap(field.resolve ?? ((source) => (source as Record<string, unknown> | null)?.[field.name]));
}

/** `_entities` resolves types by `__typename`: each representation's type is checked first. */
function guardEntities(schema: GraphQLSchema): void {
  const field = schema.getQueryType()?.getFields()._entities;
  if (!field?.resolve) return;
  const resolve = field.resolve;
  field.resolve = (source, args: { representations?: unknown }, context: WithCaller, info) => {
    const representations = Array.isArray(args.representations) ? args.representations : [];
    const typenames = new Set(representations.map((representation: unknown) => (representation as { __typename?: unknown } | null)?.__typename));
    // Unknown types were refused before (src/graphql/schema.ts); each known one is checked.
    for (const typename of typenames) {
      const type: GraphQLNamedType | undefined = typeof typename === 'string' ? schema.getType(typename) : undefined;
      if (type) authorize(context.caller, requirementOf(type));
    }
    return resolve(source, args, context, info);
  };
}

/**
 * For a subscription, which has one root field and no partial result: the refusal of the
 * whole operation when its caller may not run its root field (UNAUTHENTICATED without
 * credentials, else FORBIDDEN), so the transport answers it as a request-level error (an
 * HTTP 401 over SSE, an `error` message over WebSocket) before anything executes.
 */
export function subscriptionRefusal(schema: GraphQLSchema, fieldName: string | undefined, caller: Caller): GatewayError | undefined {
  const field = fieldName ? schema.getSubscriptionType()?.getFields()[fieldName] : undefined;
  if (!field) return undefined;
  try {
    authorize(caller, requirementOf(field));
    return undefined;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}
