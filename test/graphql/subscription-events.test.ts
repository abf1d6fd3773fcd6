import { buildSchema, parse, subscribe, type ExecutionResult, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

// Counts graphql-js's `execute` as the module under test calls it.
jest.mock('graphql', () => {
  const actual = jest.requireActual<typeof import('graphql')>('graphql');
  return { ...actual, execute: jest.fn(actual.execute) };
});
import { execute } from 'graphql';
import { subscribeEvents } from '../../src/graphql/subscription-events';

const executeCalls = execute as jest.MockedFunction<typeof execute>;

type Payload = { n: number; fail?: boolean; big?: boolean; missing?: boolean };

const typeDefs = /* GraphQL */ `
  enum Kind { ODD EVEN }
  input TickInput { count: Int!, failAt: Int, bigAt: Int, missingAt: Int }
  type Tick {
    n: Int!
    label: String
    kind: Kind
    double: Int
    big: Int
    missing: String!
    nested: Inner
  }
  type Inner { n: Int }
  type Query { ok: Boolean }
  type Subscription { ticks(input: TickInput!): Tick! }
`;

/** A subscription whose events exercise every way completing a value can go. */
function testSchema(): GraphQLSchema {
  const schema = buildSchema(typeDefs);
  // A field resolver of its own: called as graphql-js calls it.
  (schema.getType('Tick') as GraphQLObjectType).getFields().double.resolve = (tick: { n: number }) => tick.n * 2;
  const ticks = schema.getSubscriptionType()!.getFields().ticks;
  ticks.subscribe = async function* (_root: unknown, { input }: { input: { count: number; failAt?: number; bigAt?: number; missingAt?: number } }) {
    for (let n = 0; n < input.count; n++) yield { n, fail: n === input.failAt, big: n === input.bigAt, missing: n === input.missingAt } satisfies Payload;
  };
  ticks.resolve = (payload: Payload, _args: unknown, context: { seen: number[] }) => {
    context.seen.push(payload.n);
    if (payload.fail) throw new Error(`tick ${payload.n} failed`);
    return {
      n: payload.n,
      label: payload.n % 3 === 0 ? null : `tick ${payload.n}`,
      kind: payload.n % 2 ? 'ODD' : 'EVEN',
      big: payload.big ? 2 ** 40 : 1,
      missing: payload.missing ? null : 'here',
      nested: { n: payload.n },
    };
  };
  return schema;
}

async function collect(result: AsyncGenerator<ExecutionResult, void, void> | ExecutionResult | AsyncIterable<ExecutionResult>): Promise<unknown[]> {
  if (!(Symbol.asyncIterator in result)) return [JSON.parse(JSON.stringify(result))];
  const events: unknown[] = [];
  for await (const event of result as AsyncIterable<ExecutionResult>) events.push(JSON.parse(JSON.stringify(event)));
  return events;
}

/** The same subscription through graphql-js's `subscribe` and through `subscribeEvents`: results, and resolver calls. */
async function both(query: string, variableValues?: Record<string, unknown>) {
  const schema = testSchema();
  const document = parse(query);
  const reference = { seen: [] as number[] };
  const expected = await collect(await subscribe({ schema, document, variableValues, contextValue: reference }));
  executeCalls.mockClear();
  const mine = { seen: [] as number[] };
  const actual = await collect(await subscribeEvents({ schema, document, variableValues, contextValue: mine }));
  return { expected, actual, executes: executeCalls.mock.calls.length, referenceSeen: reference.seen, seen: mine.seen };
}

describe('subscription events without a graphql-js execute per event (subscribeEvents)', () => {
  it('completes a selection of leaves, aliases and __typename itself, exactly as graphql-js does', async () => {
    const run = await both('subscription { ticks(input: { count: 4 }) { n label kind double a: n __typename } }');
    expect(run.actual).toEqual(run.expected);
    expect(run.actual).toHaveLength(4);
    expect(run.actual[1]).toEqual({ data: { ticks: { n: 1, label: 'tick 1', kind: 'ODD', double: 2, a: 1, __typename: 'Tick' } } });
    expect(run.executes).toBe(0);
    expect(run.seen).toEqual(run.referenceSeen);
  });

  it('takes the root field arguments from the variables, coerced once', async () => {
    const run = await both('subscription Ticks($input: TickInput!) { ticks(input: $input) { n } }', { input: { count: 3 } });
    expect(run.actual).toEqual(run.expected);
    expect(run.actual).toHaveLength(3);
    expect(run.executes).toBe(0);
  });

  it.each([
    ['a resolver that throws', { count: 3, failAt: 1 }],
    ['a value its scalar refuses', { count: 3, bigAt: 2 }],
    ['a null where the type forbids it', { count: 3, missingAt: 0 }],
  ])('hands an event with %s to graphql-js, whose error result it sends as before', async (_name, input) => {
    const run = await both('subscription ($input: TickInput!) { ticks(input: $input) { n big missing } }', { input });
    expect(run.actual).toEqual(run.expected);
    expect(run.actual.some((event) => (event as ExecutionResult).errors?.length)).toBe(true);
    // Only that event went through execute.
    expect(run.executes).toBe(1);
  });

  it.each([
    ['a directive', 'subscription ($yes: Boolean!) { ticks(input: { count: 2 }) { n label @include(if: $yes) } }', { yes: false }],
    ['a fragment', 'subscription { ticks(input: { count: 2 }) { ...T } } fragment T on Tick { n kind }', undefined],
    ['an inline fragment', 'subscription { ticks(input: { count: 2 }) { ... on Tick { n } } }', undefined],
    ['a nested object', 'subscription { ticks(input: { count: 2 }) { n nested { n } } }', undefined],
    ['a repeated response key', 'subscription { ticks(input: { count: 2 }) { n n } }', undefined],
    ['an aliased root field', 'subscription { t: ticks(input: { count: 2 }) { n } }', undefined],
  ])('leaves a selection with %s to graphql-js for every event, with the same results', async (name, query, variables) => {
    const run = await both(query, variables);
    expect(run.actual).toEqual(run.expected);
    expect(run.actual).toHaveLength(2);
    // An aliased root field is simple enough: it is completed here.
    expect(run.executes).toBe(name === 'an aliased root field' ? 0 : 2);
  });

  it('returns the source stream error as graphql-js does (a subscribe resolver refusing its input)', async () => {
    const run = await both('subscription ($input: TickInput!) { ticks(input: $input) { n } }', { input: { count: 'many' } });
    expect(run.actual).toEqual(run.expected);
    expect(run.actual[0]).toMatchObject({ errors: [expect.objectContaining({ message: expect.stringContaining('count') })] });
  });

  it('passes return() through to the source, ending it at once', async () => {
    const schema = testSchema();
    const events = (await subscribeEvents({
      schema,
      document: parse('subscription { ticks(input: { count: 1000 }) { n } }'),
      contextValue: { seen: [] as number[] },
    })) as AsyncGenerator<ExecutionResult, void, void>;
    expect(await events.next()).toEqual({ value: { data: { ticks: { n: 0 } } }, done: false });
    expect(await events.return(undefined)).toEqual({ value: undefined, done: true });
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });
});
