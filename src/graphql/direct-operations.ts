import {
  execute,
  getNamedType,
  getVariableValues,
  isLeafType,
  isObjectType,
  Kind,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLFormattedError,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type VariableDefinitionNode,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import Negotiator from 'negotiator';
import { chain } from '../lib/chain';
import type { GraphQLContext } from './context';
import type { FormatError } from './prepare-operation';
import { settleOperation, type CachePolicyHint } from './settle-operation';

/**
 * Direct operations: a query Apollo Server has already parsed, validated and run once,
 * executed again without Apollo's request pipeline.
 *
 * For a cache miss, Apollo's pipeline (its request context, the plugin hooks around every
 * stage, the per-field cache-control instrumentation, content negotiation, error
 * normalisation) cost about a fifth of the gateway's CPU. A document it has accepted is
 * valid for good (the schema and the rules do not change while the process runs), so the
 * operation plugin hands it here (`learn`) when it is one of the shapes this module can
 * answer exactly as Apollo would; the next request with the same text and operation name
 * is admitted as every operation is (`OperationPipeline.admit`: credentials, trusted
 * documents, `requestsPerMinute`), executed by graphql-js's own `execute` on the same
 * schema (so the resolvers, the directives' guards, null propagation and error paths are
 * graphql-js's), and answered with what Apollo would have sent: the same status, body,
 * `Content-Type`, `Cache-Control`, `ETag`, `Retry-After` and `WWW-Authenticate`, and the
 * same telemetry (`settleOperation`, src/graphql/settle-operation.ts, ends both).
 *
 * The shapes: a query (no directives) whose root fields are `completion` or `fimCompletion`
 * (no directives), each selecting only leaf fields of `Completion`, `__typename` and
 * `usage { … }` of leaf fields (no arguments, directives or fragments), with no
 * `@cacheControl` on any of them but `Usage`'s `inheritMaxAge` (which adds nothing). Then the
 * response's cache policy is the one Apollo's cache-control plugin computes: each root
 * field's dynamic hint (`hintCompletion`), and uncacheable when any root field has none.
 * Anything else (other fields, `completions`, deeper selections, fragments, variables that
 * do not coerce, an Accept header Apollo would answer 406 or with another type, persisted
 * query extensions) goes through Apollo, as before.
 *
 * Bounded: at most `maxEntries` plans and an estimated 16 MiB of documents (LRU), for
 * documents of at most MAX_QUERY_CHARS characters.
 */
export interface DirectOperationsOptions {
  /** Plans kept (GRAPHQL_DIRECT_OPERATIONS_MAX_ENTRIES); 0 turns direct operations off. */
  maxEntries: number;
  schema: GraphQLSchema;
  formatError: FormatError;
}

/** Longer documents (with their operation name) are not kept: a client sending them goes through Apollo each time. */
export const MAX_QUERY_CHARS = 16 * 1024;
const MAX_PLAN_BYTES = 16 * 1024 * 1024;
/** Distinct Accept headers whose negotiated type is remembered. */
const MAX_ACCEPT_VALUES = 64;
const MAX_ACCEPT_CHARS = 256;

/** Apollo Server's media types (`MEDIA_TYPES` in @apollo/server, which does not export them). */
const APPLICATION_JSON = 'application/json; charset=utf-8';
const APPLICATION_GRAPHQL_RESPONSE_JSON = 'application/graphql-response+json; charset=utf-8';
const APPLICATION_JSON_GRAPHQL_CALLBACK = 'application/json; callbackSpec=1.0; charset=utf-8';
const OFFERED = [APPLICATION_JSON, APPLICATION_GRAPHQL_RESPONSE_JSON, APPLICATION_JSON_GRAPHQL_CALLBACK];

const DIRECT_ROOT_FIELDS: ReadonlySet<string> = new Set(['completion', 'fimCompletion']);

/** A document Apollo accepted, in a shape this module answers. */
export interface DirectPlan {
  readonly document: DocumentNode;
  readonly operation: OperationDefinitionNode;
  readonly operationName: string | undefined;
  readonly variableDefinitions: readonly VariableDefinitionNode[];
  /** Distinct response keys of the root fields: each resolves once and hints once. */
  readonly rootFields: number;
}

/** A direct operation's HTTP answer. */
export interface DirectAnswer {
  status: number;
  contentType: string;
  headers: Array<[string, string]>;
  body: string;
}

/** The dynamic cache hints of one operation's root fields (see `hintCompletion`). */
export class CacheHints {
  count = 0;
  maxAge = Infinity;
  private = false;

  add(maxAge: number, scope: 'PUBLIC' | 'PRIVATE'): void {
    this.count += 1;
    if (maxAge < this.maxAge) this.maxAge = maxAge;
    if (scope === 'PRIVATE') this.private = true;
  }
}

export interface DirectOperationsStats {
  stats(): { plans: number; served: number };
}

export class DirectOperations implements DirectOperationsStats {
  readonly #plans: LRUCache<string, DirectPlan>;
  readonly #schema: GraphQLSchema;
  readonly #formatError: FormatError;
  readonly #contentTypes = new Map<string, string | null>();
  #served = 0;

  constructor(options: DirectOperationsOptions) {
    this.#plans = new LRUCache({ max: Math.max(1, options.maxEntries), maxSize: MAX_PLAN_BYTES, sizeCalculation: (_plan, key) => key.length * 8 });
    this.#schema = options.schema;
    this.#formatError = options.formatError;
  }

  /** The plan for this document and operation name, if Apollo ran it before and it qualifies. */
  plan(query: unknown, operationName: unknown): DirectPlan | undefined {
    if (typeof query !== 'string') return undefined;
    if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return undefined;
    // Looked up before the request's limits are checked: a key longer than any kept is not built.
    if (!keepable(query, operationName ?? undefined)) return undefined;
    return this.#plans.get(planKey(query, operationName ?? undefined));
  }

  /** Apollo resolved `operation` of `document` (parsed from `query`, validated): kept when it qualifies. */
  learn(query: string | undefined, operationName: string | null | undefined, document: DocumentNode | undefined, operation: OperationDefinitionNode | null | undefined): void {
    if (query === undefined || !keepable(query, operationName ?? undefined) || !document || !operation) return;
    const key = planKey(query, operationName ?? undefined);
    if (this.#plans.has(key)) return;
    const rootFields = directRootFields(this.#schema, operation);
    if (rootFields === undefined) return;
    this.#plans.set(key, { document, operation, operationName: operationName ?? undefined, variableDefinitions: operation.variableDefinitions ?? [], rootFields });
  }

  /**
   * The content type Apollo would answer a single result with for this Accept header, or
   * null when it would refuse it (406) or answer another type: such requests go to Apollo.
   */
  contentType(accept: string | undefined): string | null {
    if (!accept) return APPLICATION_JSON;
    if (accept.length > MAX_ACCEPT_CHARS) return null;
    let type = this.#contentTypes.get(accept);
    if (type === undefined) {
      const preferred = new Negotiator({ headers: { accept } }).mediaType(OFFERED) ?? null;
      type = preferred === APPLICATION_JSON || preferred === APPLICATION_GRAPHQL_RESPONSE_JSON ? preferred : null;
      if (this.#contentTypes.size < MAX_ACCEPT_VALUES) this.#contentTypes.set(accept, type);
    }
    return type;
  }

  /** Whether the request's variables coerce (else Apollo answers the request, with its 400). */
  coerces(plan: DirectPlan, variables: unknown): boolean {
    if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return false;
    const coerced = getVariableValues(this.#schema, plan.variableDefinitions, (variables ?? {}) as Record<string, unknown>, { maxErrors: 1 });
    return coerced.errors === undefined;
  }

  /**
   * Runs an admitted operation's plan and settles it (`settleOperation`: status, headers,
   * telemetry, `extensions.cost`, hot-answer notes).
   */
  run(plan: DirectPlan, variables: unknown, context: GraphQLContext, request: { method: string; contentType: string }): Promise<DirectAnswer> {
    const hints = new CacheHints();
    // A promise chain, not an async frame held until the upstream answers (see `chain`);
    // a throw anywhere is a rejection, as in an async function.
    return chain(
      () => {
        // Telemetry names the operation as Apollo resolves it: its own name, sent or not.
        context.operation.resolved('query', plan.operation.name?.value);
        context.operation.servedDirect();
        context.hotAnswer?.resolved(plan.operation);
        context.cacheHints = hints;
        return Promise.resolve(
          execute({
            schema: this.#schema,
            document: plan.document,
            operationName: plan.operationName,
            variableValues: (variables ?? undefined) as Record<string, unknown> | undefined,
            contextValue: context,
          }),
        );
      },
      (result) => this.#answer(plan, result, hints, context, request),
    );
  }

  /** The executed plan's answer, settled (status, headers, telemetry, `extensions.cost`, hot-answer notes). */
  #answer(plan: DirectPlan, result: ExecutionResult, hints: CacheHints, context: GraphQLContext, request: { method: string; contentType: string }): DirectAnswer {
    this.#served += 1;
    if (result.errors && result.errors.length > 0) {
      const { errors, status, headers } = this.#normalize(result.errors);
      // As Apollo: a result with errors is never cacheable (`Cache-Control: no-store`).
      const settled = settleOperation(context, { method: request.method, single: true, data: result.data, errors, status, policy: null, extensionsEmpty: true });
      const body = JSON.stringify({ errors, data: result.data, extensions: { cost: settled.cost } });
      return { status: settled.status ?? 200, contentType: request.contentType, headers: [...headers, ['cache-control', 'no-store'], ...settled.headers], body: `${body}\n` };
    }
    const policy: CachePolicyHint | null =
      hints.count === plan.rootFields && hints.maxAge > 0 && hints.maxAge !== Infinity ? { maxAge: hints.maxAge, scope: hints.private ? 'PRIVATE' : 'PUBLIC' } : null;
    const settled = settleOperation(context, { method: request.method, single: true, data: result.data, errors: undefined, status: undefined, policy, extensionsEmpty: true });
    const cacheControl = policy ? `max-age=${policy.maxAge}, ${policy.scope.toLowerCase()}` : 'no-store';
    const dataJson = settled.dataJson ?? JSON.stringify(result.data ?? null);
    return {
      status: settled.status ?? 200,
      contentType: request.contentType,
      headers: [['cache-control', cacheControl], ...settled.headers],
      // Byte for byte what Apollo sends: errors, data, extensions in that order, then a newline.
      body: `{"data":${dataJson},"extensions":{"cost":${JSON.stringify(settled.cost)}}}\n`,
    };
  }

  stats(): { plans: number; served: number } {
    return { plans: this.#plans.size, served: this.#served };
  }

  /**
   * Apollo's normalisation of execution errors (`normalizeAndFormatErrors`, which it does
   * not export): each error formatted with the gateway's `formatError` (code defaulting to
   * INTERNAL_SERVER_ERROR), its `extensions.http` taken off it and merged into the response
   * (status and headers), and a formatter that throws answered as an internal error.
   */
  #normalize(errors: readonly GraphQLError[]): { errors: GraphQLFormattedError[]; status: number | undefined; headers: Array<[string, string]> } {
    let status: number | undefined;
    const headers: Array<[string, string]> = [];
    const formatted = errors.map((error) => {
      try {
        const extensions: Record<string, unknown> = { ...error.extensions, code: error.extensions.code ?? 'INTERNAL_SERVER_ERROR' };
        const http = extensions.http as { status?: unknown; headers?: unknown } | undefined;
        if (http && typeof http === 'object' && (!('status' in http) || typeof http.status === 'number') && (!('headers' in http) || http.headers instanceof Map)) {
          if (http.status) status = http.status as number;
          if (http.headers) for (const [name, value] of http.headers as Map<string, string>) headers.push([name, value]);
          delete extensions.http;
        }
        return this.#formatError({ ...error.toJSON(), extensions }, error);
      } catch {
        return { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
      }
    });
    return { errors: formatted, status, headers };
  }
}

/** A document and operation name of at most MAX_QUERY_CHARS characters together. */
function keepable(query: string, operationName: string | undefined): boolean {
  return query.length + (operationName?.length ?? 0) <= MAX_QUERY_CHARS;
}

function planKey(query: string, operationName: string | undefined): string {
  return `${operationName ?? ''}\n${query}`;
}

/**
 * The number of distinct root response keys of `operation` if this module can answer it
 * exactly (see the module's doc), else undefined.
 */
export function directRootFields(schema: GraphQLSchema, operation: OperationDefinitionNode): number | undefined {
  if (operation.operation !== 'query' || (operation.directives?.length ?? 0) > 0) return undefined;
  if (operation.variableDefinitions?.some((definition) => (definition.directives?.length ?? 0) > 0)) return undefined;
  const query = schema.getQueryType();
  if (!query) return undefined;
  const keys = new Set<string>();
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || (selection.directives?.length ?? 0) > 0 || !DIRECT_ROOT_FIELDS.has(selection.name.value) || !selection.selectionSet) return undefined;
    const field = query.getFields()[selection.name.value];
    const type = field && getNamedType(field.type);
    if (!field || !isObjectType(type) || hasCacheControl(field.astNode) || hasCacheControl(type.astNode) || type.extensionASTNodes.some(hasCacheControl)) return undefined;
    if (!leavesOnly(type, selection.selectionSet, true)) return undefined;
    keys.add(selection.alias?.value ?? selection.name.value);
  }
  return keys.size > 0 ? keys.size : undefined;
}

/**
 * Whether `selectionSet` of `type` selects only leaf fields and `__typename` (no arguments,
 * directives or fragments, no `@cacheControl`), or, when `nested`, also objects whose type
 * only inherits its parent's cache policy (`@cacheControl(inheritMaxAge: true)`, as `Usage`)
 * selected the same way: Apollo's cache-control plugin then takes nothing from them.
 */
function leavesOnly(type: GraphQLObjectType, selectionSet: SelectionSetNode, nested: boolean): boolean {
  const fields = type.getFields();
  for (const leaf of selectionSet.selections) {
    if (leaf.kind !== Kind.FIELD || (leaf.directives?.length ?? 0) > 0 || (leaf.arguments?.length ?? 0) > 0) return false;
    if (leaf.name.value === '__typename' && !leaf.selectionSet) continue;
    const definition = fields[leaf.name.value];
    if (!definition || hasCacheControl(definition.astNode)) return false;
    const named = getNamedType(definition.type);
    if (!leaf.selectionSet) {
      if (!isLeafType(named)) return false;
      continue;
    }
    if (!nested || !isObjectType(named) || !onlyInheritsMaxAge(named) || !leavesOnly(named, leaf.selectionSet, false)) return false;
  }
  return true;
}

/** `@cacheControl(inheritMaxAge: true)` and nothing else on the type (nor on its extensions). */
function onlyInheritsMaxAge(type: GraphQLObjectType): boolean {
  const directives = [type.astNode, ...type.extensionASTNodes].flatMap((node) => node?.directives ?? []).filter((directive) => directive.name.value === 'cacheControl');
  if (directives.length !== 1) return false;
  const args = directives[0].arguments ?? [];
  return args.length === 1 && args[0].name.value === 'inheritMaxAge' && args[0].value.kind === Kind.BOOLEAN && args[0].value.value;
}

function hasCacheControl(node: { directives?: readonly { name: { value: string } }[] } | null | undefined): boolean {
  return node?.directives?.some((directive) => directive.name.value === 'cacheControl') ?? false;
}
