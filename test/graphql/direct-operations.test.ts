import { ApolloServer, HeaderMap } from '@apollo/server';
import { buildSchema, GraphQLError, parse } from 'graphql';
import type { GraphQLContext } from '../../src/graphql/context';
import { DirectOperations, directRootFields, type DirectPlan } from '../../src/graphql/direct-operations';
import { createFormatError } from '../../src/graphql/format-error';
import { operationPlugin } from '../../src/graphql/plugins/operation';
import { silentLogger } from '../../src/telemetry/logger';

/**
 * DirectOperations against Apollo Server itself, in process, on one small schema whose
 * resolvers fail in every way Apollo treats specially: an error carrying `extensions.http`
 * (status and headers), an unexpected error (masked), a non-null field's error (data null)
 * and a nullable one's (partial data). Each document goes through Apollo, which hands it to
 * DirectOperations (`learn`), then through both, and the two HTTP answers must be equal.
 */

const typeDefs = `
  directive @cacheControl(maxAge: Int, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT
  type Query { completion(input: String): Completion! fimCompletion(input: String): Completion other: String }
  type Completion { id: ID! content: String nested: Completion usage: Usage limited: Limited }
  type Usage @cacheControl(inheritMaxAge: true) { total: Int deeper: Usage }
  type Limited @cacheControl(maxAge: 5) { total: Int }
`;

const COST = { upstreamCalls: 0, cacheHits: 0, joinedInFlight: 0, joinedRemote: 0, upstreamMs: 0, overheadMs: 0, totalMs: 0, estimatedCostUsd: 0 };

function answer(input: string | undefined): unknown {
  switch (input) {
    case 'http': {
      // Apollo reads `http.headers` as a HeaderMap (graphql's extension type is augmented as a record).
      const extensions: Record<string, unknown> = { code: 'TEAPOT', http: { status: 418, headers: new HeaderMap([['x-reason', 'tea']]) } };
      throw new GraphQLError('I am a teapot', { extensions });
    }
    case 'unexpected':
      throw new Error('a detail no client may see');
    case 'null':
      return null;
    default:
      return { id: `id-${input}`, content: `content of ${input}`, usage: { total: 3 } };
  }
}

const schema = buildSchema(typeDefs);
for (const name of ['completion', 'fimCompletion']) {
  schema.getQueryType()!.getFields()[name].resolve = (_source, args: { input?: string }) => answer(args.input);
}

/** The few parts of an operation's context the two paths touch. */
function fakeContext(): GraphQLContext {
  let ended = false;
  const operation = {
    type: 'query',
    name: undefined,
    get ended() {
      return ended;
    },
    resolved() {},
    servedDirect() {},
    result() {},
    end() {
      ended = true;
      return COST;
    },
  };
  return { operation } as unknown as GraphQLContext;
}

describe('DirectOperations answers as Apollo Server does', () => {
  const formatError = createFormatError(silentLogger(), { hideSchemaDetails: true });
  const direct = new DirectOperations({ maxEntries: 100, schema, formatError });
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    plugins: [operationPlugin({ learn: (source, name, document, operation) => direct.learn(source, name, document, operation) })],
  });
  beforeAll(() => apollo.start());
  afterAll(() => apollo.stop());

  async function viaApollo(query: string) {
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: 'POST', headers: new HeaderMap([['content-type', 'application/json']]), body: { query }, search: '' },
      context: async () => fakeContext(),
    });
    if (response.body.kind !== 'complete') throw new Error('expected a complete body');
    return { status: response.status ?? 200, headers: Object.fromEntries(response.headers), body: response.body.string };
  }

  async function viaDirect(plan: DirectPlan) {
    const answered = await direct.run(plan, undefined, fakeContext(), { method: 'POST', contentType: 'application/json; charset=utf-8' });
    return { status: answered.status, headers: Object.fromEntries([['content-type', answered.contentType], ...answered.headers]), body: answered.body };
  }

  it.each([
    ['a result', '{ completion(input: "a") { id content __typename } }'],
    ['a result with a type that inherits its cache policy', '{ completion(input: "a") { id usage { total __typename } } }'],
    ['an error with extensions.http', '{ completion(input: "http") { id } }'],
    ['an unexpected error, masked', '{ completion(input: "unexpected") { id } }'],
    ['null for a non-null field', '{ completion(input: "null") { id } }'],
    ['a nullable field failing beside a result', '{ ok: completion(input: "b") { id } fimCompletion(input: "http") { content } }'],
    ['two errors', '{ fimCompletion(input: "unexpected") { id } again: fimCompletion(input: "http") { id } }'],
  ])('%s', async (_name, query) => {
    const reference = await viaApollo(query);
    const plan = direct.plan(query, undefined);
    expect(plan).toBeDefined();
    expect(await viaDirect(plan!)).toEqual(reference);
  });

  it('keeps no document whose text and operation name pass 16 KiB together, and builds no key for one', async () => {
    const fresh = new DirectOperations({ maxEntries: 10, schema, formatError });
    const query = 'query Long { completion(input: "a") { id } }';
    const operation = parse(query).definitions[0];
    if (operation.kind !== 'OperationDefinition') throw new Error('not an operation');
    const longName = 'N'.repeat(16 * 1024);
    fresh.learn(query, longName, parse(query), operation);
    expect(fresh.stats().plans).toBe(0);
    fresh.learn(`${query}${' '.repeat(16 * 1024)}`, 'Long', parse(query), operation);
    expect(fresh.stats().plans).toBe(0);
    fresh.learn(query, 'Long', parse(query), operation);
    expect(fresh.stats().plans).toBe(1);
    expect(fresh.plan(query, 'Long')).toBeDefined();
    expect(fresh.plan(query, longName)).toBeUndefined();
  });

  it('keeps only the shapes it answers exactly', () => {
    const rootFieldsOf = (query: string) => {
      const document = parse(query);
      const operation = document.definitions[0];
      if (operation.kind !== 'OperationDefinition') throw new Error('not an operation');
      return directRootFields(schema, operation);
    };
    expect(rootFieldsOf('{ completion { id } same: completion { id } completion { content } }')).toBe(2);
    expect(rootFieldsOf('{ completion { nested { id } } }')).toBeUndefined();
    expect(rootFieldsOf('{ completion { usage { total } } }')).toBe(1);
    expect(rootFieldsOf('{ completion { usage { deeper { total } } } }')).toBeUndefined();
    expect(rootFieldsOf('{ completion { limited { total } } }')).toBeUndefined();
    expect(rootFieldsOf('{ completion { ...on Completion { id } } }')).toBeUndefined();
    expect(rootFieldsOf('{ completion { id @include(if: true) } }')).toBeUndefined();
    expect(rootFieldsOf('{ completion @skip(if: false) { id } }')).toBeUndefined();
    expect(rootFieldsOf('{ other completion { id } }')).toBeUndefined();
    expect(rootFieldsOf('{ __typename completion { id } }')).toBeUndefined();
    expect(rootFieldsOf('mutation { completion { id } }')).toBeUndefined();
    expect(rootFieldsOf('query @cached { completion { id } }')).toBeUndefined();
  });

  it('negotiates the content type as Apollo does, and leaves a long Accept header to Apollo', () => {
    const fresh = new DirectOperations({ maxEntries: 1, schema, formatError });
    expect(fresh.contentType(undefined)).toBe('application/json; charset=utf-8');
    expect(fresh.contentType('application/graphql-response+json')).toBe('application/graphql-response+json; charset=utf-8');
    expect(fresh.contentType('text/html')).toBeNull();
    expect(fresh.contentType(`application/json;${'q=1;'.repeat(100)}`)).toBeNull();
    // Past the remembered values, each is negotiated again: the same answers.
    for (let i = 0; i < 200; i += 1) expect(fresh.contentType(`text/x-${i}, application/json`)).toBe('application/json; charset=utf-8');
  });
});
