import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLSchema } from 'graphql';
import { parse } from 'graphql';
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
 * has. Either refusal is a BAD_USER_INPUT naming the argument, not an internal error.
 */
function guardEntities(schema: GraphQLSchema, max: number): void {
  const field = schema.getQueryType()?.getFields()._entities;
  if (!field?.resolve) return;
  const resolve = field.resolve;
  const entityTypes = new Set(
    Object.values(schema.getTypeMap())
      .filter((type) => type.astNode?.directives?.some((directive) => directive.name.value === 'key'))
      .map((type) => type.name),
  );
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
      const typename = (representation as { __typename?: unknown } | null)?.__typename;
      if (typeof typename !== 'string' || !entityTypes.has(typename)) {
        throw new BadUserInputError(
          `representations[${index}] names no entity type of this subgraph; it resolves ${[...entityTypes].join(', ')}.`,
          `representations[${index}].__typename`,
        );
      }
    });
    return resolve(source, args, context, info);
  };
}
