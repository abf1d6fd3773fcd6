import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLSchema } from 'graphql';
import { Kind, parse } from 'graphql';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import { BadUserInputError } from '../errors';
import { enforceAuthorization } from './authorization';
import { resolvers } from './resolvers';

/**
 * `schema/` sits at the repository root; tsc does not copy it into `dist/`, so look it up
 * from this file's folder upwards (works from `src/graphql` and `dist/src/graphql`).
 */
export function schemaDirectory(start = __dirname): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, 'schema');
    if (existsSync(join(candidate, 'schema.graphql'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`schema/schema.graphql not found above ${start}`);
  }
}

/** The subgraph SDL, concatenated from `schema/*.graphql`. */
export function loadTypeDefs(): string {
  const dir = schemaDirectory();
  return readdirSync(dir)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8'))
    .join('\n');
}

/** The executable Federation 2 subgraph schema. */
export function buildSchema(options: { maxRepresentations: number } = { maxRepresentations: 1000 }): GraphQLSchema {
  const schema = buildSubgraphSchema({
    typeDefs: parse(loadTypeDefs()),
    resolvers: resolvers as GraphQLResolverMap<unknown>,
  });
  // The limits wrap outermost: an oversized or unknown `_entities` call is refused before
  // its types' scopes are checked.
  enforceAuthorization(schema);
  guardEntities(schema, options.maxRepresentations);
  return schema;
}

/**
 * `_entities` (added by @apollo/subgraph) checks its representations before resolving any:
 * at most `max` of them (60,000 once took 5.8 s), each of an entity type this subgraph
 * has, each with its key fields as scalars (a representation without its `id` reached
 * the reference resolver's DataLoader, which throws on an undefined key: a masked internal
 * error, found by test/e2e/fuzz.test.ts). Every refusal is a BAD_USER_INPUT naming the
 * argument, not an internal error.
 */
function guardEntities(schema: GraphQLSchema, max: number): void {
  const field = schema.getQueryType()?.getFields()._entities;
  if (!field?.resolve) return;
  const resolve = field.resolve;
  const keyFields = entityKeyFields(schema);
  const entityNames = [...keyFields.keys()].join(', ');
  field.resolve = (source, args: { representations?: unknown }, context, info) => {
    const representations = Array.isArray(args.representations) ? args.representations : [];
    if (representations.length > max) {
      throw new BadUserInputError(
        `_entities takes at most ${max} representations (GRAPHQL_MAX_LIST_ITEMS); split the request.`,
        'representations',
        { limit: 'GRAPHQL_MAX_LIST_ITEMS' },
      );
    }
    representations.forEach((representation: unknown, index) => {
      const fields = (representation ?? {}) as Record<string, unknown>;
      const typename = fields.__typename;
      const keys = typeof typename === 'string' ? keyFields.get(typename) : undefined;
      if (!keys) {
        throw new BadUserInputError(
          `representations[${index}] names no entity type of this subgraph; it resolves ${entityNames}.`,
          `representations[${index}].__typename`,
        );
      }
      // A type may have several keys (several @key directives): one of them must be given whole.
      const isScalar = (key: string) => Object.hasOwn(fields, key) && (typeof fields[key] === 'string' || typeof fields[key] === 'number');
      if (!keys.some((key) => key.every(isScalar))) {
        const missing = keys[0]!.find((key) => !isScalar(key))!;
        throw new BadUserInputError(
          `representations[${index}] has no ${missing}: a ${typename} representation carries its key fields (${keys.map((key) => key.join(' ')).join(' or ')}) as strings.`,
          `representations[${index}].${missing}`,
        );
      }
    });
    return resolve(source, args, context, info);
  };
}

/**
 * The keys of each entity type, by type name: one list of field names per `@key(fields:
 * "id")`. Only flat keys are read: nested selections (`fields: "a { b }"`) would need
 * their own check, so they stop start-up rather than go unchecked.
 */
function entityKeyFields(schema: GraphQLSchema): Map<string, string[][]> {
  const keys = new Map<string, string[][]>();
  for (const type of Object.values(schema.getTypeMap())) {
    for (const directive of type.astNode?.directives ?? []) {
      if (directive.name.value !== 'key') continue;
      const fields = directive.arguments?.find((argument) => argument.name.value === 'fields')?.value;
      if (fields?.kind !== Kind.STRING) continue;
      if (/[{}]/.test(fields.value)) throw new Error(`@key(fields: "${fields.value}") on ${type.name}: nested keys are not checked by guardEntities`);
      keys.set(type.name, [...(keys.get(type.name) ?? []), fields.value.split(/[\s,]+/).filter(Boolean)]);
    }
  }
  return keys;
}
