import {
  Kind,
  assertValidSchema,
  createSourceEventStream,
  defaultFieldResolver,
  execute,
  getArgumentValues,
  getNullableType,
  getOperationAST,
  getVariableValues,
  isLeafType,
  isNonNullType,
  isObjectType,
  locatedError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLLeafType,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type OperationDefinitionNode,
} from 'graphql';
import { inspect } from 'graphql/jsutils/inspect';

/**
 * graphql-js's `subscribe`, with a cheaper way to turn each source event into its result.
 *
 * graphql-js maps every event through a full `execute`: it builds an execution context,
 * coerces the operation's variables again, collects fields and completes each value through
 * its resolver (14% of the gateway's CPU in a profile of short SSE streams; about 22 µs per
 * event warm, against 1.6 µs here, in `npm run bench:events`), once per token and per
 * subscriber, for a selection that is nearly always the same few scalars of one chunk.
 * When a subscription's selection is that simple (one root field without
 * directives, returning an object type without `isTypeOf`, whose selection is leaf fields and
 * `__typename`, without arguments, directives, fragments or repeated response keys), each
 * event is completed here instead: the root field's resolver and each leaf's resolver called
 * as graphql-js calls them (same arguments; `info` built once per subscription), each leaf
 * serialized by its type. Anything else (a resolver that throws or returns a promise, a null
 * where the type forbids it, a value its scalar refuses) hands that event to graphql-js's
 * `execute`, which produces the error result exactly as it always did. Any other selection
 * takes graphql-js's path for every event.
 *
 * For a simple selection the source stream (the root field's `subscribe` resolver) is
 * opened here too, as graphql-js's `createSourceEventStream` opens it (same arguments, same
 * located errors), with the operation's variables coerced once for both: graphql-js would
 * coerce them for the source stream and again for its first event, and the transports have
 * coerced them already when they checked the payload (`CheckedVariables`, taken instead when
 * the context carries them). Variables that do not coerce, and any other selection, take
 * graphql-js's `createSourceEventStream`. The mapping iterator behaves as graphql-js's own
 * (`return` and `throw` reach the source; a mapping failure closes the source first).
 */
export async function subscribeEvents(args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult, void, void> | ExecutionResult> {
  const viaExecute = (payload: unknown) => execute({ ...args, rootValue: payload });
  const plan = planFor(args);
  const variableValues = plan && (checkedVariables(args) ?? coerceVariables(plan, args));
  if (!plan || !variableValues) {
    const source = await createSourceEventStream(args);
    return isAsyncIterable(source) ? mapEvents(source, viaExecute) : source;
  }
  // What createSourceEventStream asserts first (the schema's check is kept on the schema).
  assertValidSchema(args.schema);
  // The root field's arguments, for its `subscribe` and, per event, its `resolve`.
  let rootArgs: Record<string, unknown>;
  try {
    rootArgs = getArgumentValues(plan.rootField, plan.rootNode, variableValues);
  } catch (error) {
    return { errors: [locatedError(error, [plan.rootNode], [plan.rootKey])] };
  }
  const source = await openSource(plan, args, variableValues, rootArgs);
  if (!isAsyncIterable(source)) return source;
  const project = projectionFor(plan, args, variableValues, rootArgs);
  return mapEvents(source, (payload) => project(payload) ?? viaExecute(payload));
}

/**
 * A subscription's variables as graphql-js coerced them when its payload was checked
 * (`OperationPipeline.subscribe`), for the document and the raw variables they were coerced
 * from. A transport's context carries them as `checkedVariables`.
 */
export interface CheckedVariables {
  document: DocumentNode;
  raw: ExecutionArgs['variableValues'];
  coerced: Record<string, unknown>;
}

/** The context's checked variables, if they belong to this very document and variables object. */
function checkedVariables(args: ExecutionArgs): Record<string, unknown> | undefined {
  const checked = (args.contextValue as { checkedVariables?: CheckedVariables } | null | undefined)?.checkedVariables;
  return checked && checked.document === args.document && checked.raw === args.variableValues ? checked.coerced : undefined;
}

/** The operation's variables coerced, or undefined when graphql-js would refuse them (it then reports why). */
function coerceVariables(plan: Plan, args: ExecutionArgs): Record<string, unknown> | undefined {
  const coerced = getVariableValues(args.schema, plan.operation.variableDefinitions ?? [], args.variableValues ?? {});
  return coerced.errors ? undefined : coerced.coerced;
}

/**
 * graphql-js's `executeSubscription` for a simple selection: the root field's `subscribe`
 * resolver (else the args' `subscribeFieldResolver`, else the default) called with its
 * arguments and `info`; a failure is a result with that error located at the root field, a
 * value that is not an async iterable an error thrown, as graphql-js does.
 */
async function openSource(
  plan: Plan,
  args: ExecutionArgs,
  variableValues: Record<string, unknown>,
  rootArgs: Record<string, unknown>,
): Promise<AsyncIterable<unknown> | ExecutionResult> {
  const path = { prev: undefined, key: plan.rootKey, typename: plan.rootType.name };
  let stream: unknown;
  try {
    const resolve = plan.rootField.subscribe ?? args.subscribeFieldResolver ?? defaultFieldResolver;
    const info = resolveInfo(plan, args.schema, variableValues, plan.rootField, plan.rootNode, plan.rootType, path, args.rootValue);
    stream = await resolve(args.rootValue, rootArgs, args.contextValue, info);
    if (stream instanceof Error) throw stream;
  } catch (error) {
    return { errors: [locatedError(error, [plan.rootNode], [plan.rootKey])] };
  }
  if (!isAsyncIterable(stream)) throw new Error(`Subscription field must return Async Iterable. Received: ${inspect(stream)}.`);
  return stream;
}

/**
 * graphql-js's `info` for one field, field for field (a cast: @graphql-tools/utils, loaded by
 * the federation tooling, declares helpers on the type that graphql-js 16 never sets).
 */
function resolveInfo(
  plan: Plan,
  schema: ExecutionArgs['schema'],
  variableValues: Record<string, unknown>,
  field: GraphQLField<unknown, unknown>,
  node: FieldNode,
  parentType: GraphQLObjectType,
  path: GraphQLResolveInfo['path'],
  rootValue: unknown,
): GraphQLResolveInfo {
  return {
    fieldName: field.name,
    fieldNodes: [node],
    returnType: field.type,
    parentType,
    path,
    schema,
    fragments: plan.fragments,
    rootValue,
    operation: plan.operation,
    variableValues,
  } as unknown as GraphQLResolveInfo;
}

/** The leaf fields of the chunk a simple subscription selects, as graphql-js would complete them. */
interface LeafPlan {
  responseKey: string;
  /** `__typename`: the parent type's name, no resolver. */
  typename: boolean;
  field: GraphQLField<unknown, unknown> | undefined;
  node: FieldNode;
  type: GraphQLLeafType | undefined;
  nonNull: boolean;
}

/** A simple subscription selection, found once per document and operation name. */
interface Plan {
  operation: OperationDefinitionNode;
  fragments: Record<string, FragmentDefinitionNode>;
  rootType: GraphQLObjectType;
  rootField: GraphQLField<unknown, unknown>;
  rootNode: FieldNode;
  rootKey: string;
  chunkType: GraphQLObjectType;
  leaves: LeafPlan[];
}

const plans = new WeakMap<DocumentNode, Map<string | undefined, Plan | null>>();

function planFor(args: ExecutionArgs): Plan | undefined {
  let byName = plans.get(args.document);
  if (!byName) {
    byName = new Map();
    plans.set(args.document, byName);
  }
  const name = args.operationName ?? undefined;
  let plan = byName.get(name);
  if (plan === undefined) {
    plan = makePlan(args) ?? null;
    byName.set(name, plan);
  }
  return plan ?? undefined;
}

function makePlan({ schema, document, operationName }: ExecutionArgs): Plan | undefined {
  const operation = getOperationAST(document, operationName);
  const rootType = schema.getSubscriptionType();
  if (!operation || operation.operation !== 'subscription' || !rootType) return undefined;
  const [rootNode, ...others] = operation.selectionSet.selections;
  if (others.length > 0 || !rootNode || rootNode.kind !== Kind.FIELD || rootNode.directives?.length || !rootNode.selectionSet) return undefined;
  const rootField = rootType.getFields()[rootNode.name.value];
  if (!rootField || typeof rootField.resolve !== 'function') return undefined;
  const chunkType = getNullableType(rootField.type);
  if (!isObjectType(chunkType) || chunkType.isTypeOf) return undefined;
  const fields = chunkType.getFields();
  const leaves: LeafPlan[] = [];
  const keys = new Set<string>();
  for (const node of rootNode.selectionSet.selections) {
    if (node.kind !== Kind.FIELD || node.directives?.length || node.arguments?.length || node.selectionSet) return undefined;
    const responseKey = node.alias?.value ?? node.name.value;
    if (keys.has(responseKey)) return undefined;
    keys.add(responseKey);
    if (node.name.value === '__typename') {
      leaves.push({ responseKey, typename: true, field: undefined, node, type: undefined, nonNull: true });
      continue;
    }
    const field = fields[node.name.value];
    const type = field && getNullableType(field.type);
    if (!field || !isLeafType(type)) return undefined;
    leaves.push({ responseKey, typename: false, field, node, type, nonNull: isNonNullType(field.type) });
  }
  const fragments: Record<string, FragmentDefinitionNode> = Object.create(null) as Record<string, FragmentDefinitionNode>;
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  return { operation, fragments, rootType, rootField, rootNode, rootKey: rootNode.alias?.value ?? rootNode.name.value, chunkType, leaves };
}

/**
 * The per-event projection of one subscription with a simple selection. What depends on the
 * variables (each field's `info`) is built here once; a projection returns undefined for an
 * event it leaves to graphql-js.
 */
function projectionFor(
  plan: Plan,
  args: ExecutionArgs,
  variableValues: Record<string, unknown>,
  rootArgs: Record<string, unknown>,
): (payload: unknown) => ExecutionResult | undefined {
  const { schema, contextValue } = args;
  const resolveRoot = plan.rootField.resolve!;
  const rootPath = { prev: undefined, key: plan.rootKey, typename: plan.rootType.name };
  const info = (field: GraphQLField<unknown, unknown>, node: FieldNode, parentType: GraphQLObjectType, path: GraphQLResolveInfo['path'], rootValue: unknown) =>
    resolveInfo(plan, schema, variableValues, field, node, parentType, path, rootValue);
  const leaves = plan.leaves.map((leaf) => ({
    ...leaf,
    info: leaf.field ? info(leaf.field, leaf.node, plan.chunkType, { prev: rootPath, key: leaf.responseKey, typename: plan.chunkType.name }, undefined) : undefined,
  }));
  const noArgs = {};
  return (payload) => {
    let chunk: unknown;
    try {
      chunk = resolveRoot(payload, rootArgs, contextValue, info(plan.rootField, plan.rootNode, plan.rootType, rootPath, payload));
    } catch {
      return undefined;
    }
    if (chunk === null || chunk === undefined || chunk instanceof Error || isPromiseLike(chunk)) return undefined;
    const object = Object.create(null) as Record<string, unknown>;
    for (const leaf of leaves) {
      if (leaf.typename) {
        object[leaf.responseKey] = plan.chunkType.name;
        continue;
      }
      let value: unknown;
      try {
        value = leaf.field!.resolve ? leaf.field!.resolve(chunk, noArgs, contextValue, leaf.info!) : defaultResolve(chunk, leaf.field!.name, contextValue, leaf.info!);
      } catch {
        return undefined;
      }
      if (value instanceof Error || isPromiseLike(value)) return undefined;
      if (value === null || value === undefined) {
        if (leaf.nonNull) return undefined;
        object[leaf.responseKey] = null;
        continue;
      }
      let serialized: unknown;
      try {
        serialized = leaf.type!.serialize(value);
      } catch {
        return undefined;
      }
      if (serialized === null || serialized === undefined) return undefined;
      object[leaf.responseKey] = serialized;
    }
    const data = Object.create(null) as Record<string, unknown>;
    data[plan.rootKey] = object;
    return { data };
  };
}

/** graphql-js's `defaultFieldResolver`: the property, called if it is a function. */
function defaultResolve(source: unknown, name: string, context: unknown, info: GraphQLResolveInfo): unknown {
  if (typeof source !== 'object' && typeof source !== 'function') return undefined;
  const property = (source as Record<string, unknown>)[name];
  return typeof property === 'function' ? (property as (args: unknown, context: unknown, info: GraphQLResolveInfo) => unknown).call(source, {}, context, info) : property;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function';
}

/** graphql-js's `mapAsyncIterator` (internal to it): the same `next`, `return` and `throw`. */
function mapEvents(
  iterable: AsyncIterable<unknown>,
  map: (payload: unknown) => ExecutionResult | PromiseLike<ExecutionResult>,
): AsyncGenerator<ExecutionResult, void, void> {
  const iterator = iterable[Symbol.asyncIterator]();
  const returnIgnoringErrors = async (): Promise<void> => {
    try {
      await iterator.return?.();
    } catch {
      // Keep the original error when closing the source also fails.
    }
  };
  const mapResult = async (result: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult, void>> => {
    if (result.done) return { value: undefined, done: true };
    try {
      return { value: await map(result.value), done: false };
    } catch (error) {
      await returnIgnoringErrors();
      throw error;
    }
  };
  const mapped: AsyncGenerator<ExecutionResult, void, void> = {
    next: async () => mapResult(await iterator.next()),
    return: async () => (iterator.return ? mapResult(await iterator.return()) : { value: undefined, done: true }),
    throw: async (error: unknown) => {
      if (iterator.throw) return mapResult(await iterator.throw(error));
      await returnIgnoringErrors();
      throw error;
    },
    [Symbol.asyncIterator]: () => mapped,
    // Node 20's AsyncGenerator type includes `Symbol.asyncDispose` only in newer lib typings.
  } as AsyncGenerator<ExecutionResult, void, void>;
  return mapped;
}
