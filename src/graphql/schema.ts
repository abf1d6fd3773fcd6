import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLSchema } from 'graphql';
import { parse } from 'graphql';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
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
export function buildSchema(): GraphQLSchema {
  return buildSubgraphSchema({
    typeDefs: parse(loadTypeDefs()),
    resolvers: resolvers as GraphQLResolverMap<unknown>,
  });
}
