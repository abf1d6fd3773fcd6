import { ApolloGateway, LocalGraphQLDataSource, RemoteGraphQLDataSource } from '@apollo/gateway';
import { composeServices } from '@apollo/composition';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import type { Gateway } from '../../src/app';
import { loadTypeDefs } from '../../src/graphql/schema';
import { chatCalls, gql, startTestGateway } from '../helpers/gateway';

/** A second subgraph that only references completions by id, as a product subgraph would. */
const articlesTypeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
  type Query { articles: [Article!]! }
  type Article { title: String! summary: Completion }
  type Completion @key(fields: "id", resolvable: false) { id: ID! }
`);

describe('as a Federation 2 subgraph', () => {
  let gateway: Gateway;
  let router: ApolloServer;
  let routerUrl: string;
  let knownId: string;
  let routerGateway: ApolloGateway;
  let supergraphSdl: string;

  beforeAll(async () => {
    gateway = await startTestGateway();
    const stored = await gql<{ completion: { id: string } }>(
      gateway,
      '{ completion(input: {prompt: "Summarise federation", thinking: false}) { id } }',
    );
    knownId = stored.data!.completion.id;

    const articlesSchema = buildSubgraphSchema({
      typeDefs: articlesTypeDefs,
      resolvers: {
        Query: {
          articles: () => [
            { title: 'Known', summary: { __typename: 'Completion', id: knownId } },
            { title: 'Unknown', summary: { __typename: 'Completion', id: 'cmpl_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } },
          ],
        },
      },
    });

    const composed = composeServices([
      { name: 'deepseek', typeDefs: parse(loadTypeDefs()), url: gateway.graphqlUrl },
      { name: 'articles', typeDefs: articlesTypeDefs, url: 'local://articles' },
    ]);
    expect(composed.errors ?? []).toEqual([]);
    supergraphSdl = composed.supergraphSdl!;

    routerGateway = new ApolloGateway({
      // @apollo/gateway cannot enforce the SECURITY features (@authenticated,
      // @requiresScopes; Apollo Router does) and refuses a supergraph that requires them:
      // it gets them as plain links, and this subgraph enforces the scopes itself.
      supergraphSdl: supergraphSdl.replaceAll(', for: SECURITY)', ')'),
      buildService: ({ name, url }) =>
        name === 'articles' ? new LocalGraphQLDataSource(articlesSchema) : new RemoteGraphQLDataSource({ url }),
    });
    router = new ApolloServer({ gateway: routerGateway });
    ({ url: routerUrl } = await startStandaloneServer(router, { listen: { port: 0, host: '127.0.0.1' } }));
  });

  afterAll(async () => {
    await router?.stop();
    await gateway?.close();
  });

  it('composes with another subgraph and resolves Completion entities through the router from the cache', async () => {
    const before = chatCalls(gateway);
    const res = await fetch(routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ articles { title summary { id content cached model } } }' }),
    });
    const body = (await res.json()) as { data: { articles: Array<{ title: string; summary: Record<string, unknown> | null }> }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data.articles[0]!.summary).toMatchObject({ id: knownId, cached: true, model: 'deepseek-flash' });
    expect(String(body.data.articles[0]!.summary!.content)).toMatch(/Simulated/);
    expect(body.data.articles[1]!.summary).toBeNull();
    expect(chatCalls(gateway)).toBe(before);
  });

  it('puts @authenticated and @requiresScopes in the supergraph, so a router enforces the same scopes', () => {
    // A root field's line: with arguments if it has any (CompletionChunk.completion has none).
    const lines = supergraphSdl.split('\n');
    const field = (name: string): string =>
      lines.find((line) => new RegExp(`^\\s+${name}\\(`).test(line)) ?? lines.find((line) => new RegExp(`^\\s+${name}:`).test(line)) ?? '';
    expect(supergraphSdl).toMatch(/@link\(url: "https:\/\/specs\.apollo\.dev\/requiresScopes\/v0\.1", for: SECURITY\)/);
    expect(field('completion')).toMatch(/@authenticated @requiresScopes\(scopes: \[\["completions:read"\]\]\)/);
    expect(field('completionStream')).toMatch(/@requiresScopes\(scopes: \[\["completions:stream"\]\]\)/);
    expect(field('createCompletion')).toMatch(/@requiresScopes\(scopes: \[\["completions:write"\]\]\)/);
    expect(field('upstream')).toMatch(/@requiresScopes\(scopes: \[\["gateway:admin"\]\]\)/);
    expect(supergraphSdl).toMatch(/type Completion[^{]*@authenticated[^{]*@requiresScopes\(scopes: \[\["completions:read"\]\]\)/);
  });

  it('routes root fields of this subgraph through the router', async () => {
    const res = await fetch(routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ upstream { mode circuit } }' }),
    });
    expect(await res.json()).toEqual({ data: { upstream: { mode: 'SIMULATOR', circuit: 'CLOSED' } } });
  });

  // Found by test/e2e/fuzz.test.ts: these reached the reference resolver's DataLoader, which
  // throws on a missing key, and came back as a masked INTERNAL_SERVER_ERROR.
  it.each([
    ['without its id', { __typename: 'Completion' }],
    ['with a null id', { __typename: 'Completion', id: null }],
    ['with an id that is not a scalar', { __typename: 'Completion', id: { a: 1 } }],
  ])('refuses a representation %s as BAD_USER_INPUT naming the key field', async (_what, representation) => {
    const res = await gql(gateway, 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Completion { id } } }', { r: [{ __typename: 'Completion', id: knownId }, representation] });
    expect(res.errors).toEqual([expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT', field: 'representations[1].id' } })]);
  });
});
