import { buildSchema, parse, subscribe, type DocumentNode, type ExecutionResult, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

// Counts graphql-js's `execute`, `createSourceEventStream` and `getVariableValues` as the module under test calls them.
jest.mock('graphql', () => {
  const actual = jest.requireActual<typeof import('graphql')>('graphql');
  return {
    ...actual,
    execute: jest.fn(actual.execute),
    createSourceEventStream: jest.fn(actual.createSourceEventStream),
    getVariableValues: jest.fn(actual.getVariableValues),
  };
});
import { createSourceEventStream, execute, getVariableValues } from 'graphql';
import { subscribeEvents, type CheckedVariables } from '../../src/graphql/subscription-events';

const executeCalls = execute as jest.MockedFunction<typeof execute>;
const sourceStreamCalls = createSourceEventStream as jest.MockedFunction<typeof createSourceEventStream>;
const coercions = getVariableValues as jest.MockedFunction<typeof getVariableValues>;

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
  type Input = { count: number; failAt?: number; bigAt?: number; missingAt?: number };
  async function* events(input: Input) {
    for (let n = 0; n < input.count; n++) yield { n, fail: n === input.failAt, big: n === input.bigAt, missing: n === input.missingAt } satisfies Payload;
  }
  // A negative count is refused when subscribing; -1 is answered with something not iterable.
  ticks.subscribe = (_root: unknown, { input }: { input: Input }) => {
    if (input.count === -1) return { not: 'a stream' };
    if (input.count < 0) throw new Error(`count ${input.count} is negative`);
    return events(input);
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

/**
 * The same subscription through graphql-js's `subscribe` and through `subscribeEvents`:
 * results, resolver calls, and what the module under test asked of graphql-js. `checked`
 * puts checked variables on the context, as `OperationPipeline.subscribe` does.
 */
async function both(query: string, variableValues?: Record<string, unknown>, checked?: (document: DocumentNode) => CheckedVariables) {
  const schema = testSchema();
  const document = parse(query);
  const reference = { seen: [] as number[] };
  const expected = await collect(await subscribe({ schema, document, variableValues, contextValue: reference }));
  executeCalls.mockClear();
  sourceStreamCalls.mockClear();
  coercions.mockClear();
  const mine = { seen: [] as number[], checkedVariables: checked?.(document) };
  const actual = await collect(await subscribeEvents({ schema, document, variableValues, contextValue: mine }));
  return {
    expected,
    actual,
    executes: executeCalls.mock.calls.length,
    sourceStreams: sourceStreamCalls.mock.calls.length,
    coercions: coercions.mock.calls.length,
    referenceSeen: reference.seen,
    seen: mine.seen,
  };
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

  it('coerces the variables once for the source stream and its events, and not at all when the payload check did', async () => {
    const query = 'subscription Ticks($input: TickInput!) { ticks(input: $input) { n kind } }';
    const variables = { input: { count: 3 } };
    const run = await both(query, variables);
    expect(run.actual).toEqual(run.expected);
    expect(run.actual).toHaveLength(3);
    expect(run.sourceStreams).toBe(0);
    expect(run.coercions).toBe(1);

    const coerced = { input: { count: 3 } };
    const checked = await both(query, variables, (document) => ({ document, raw: variables, coerced }));
    expect(checked.actual).toEqual(run.expected);
    expect(checked.coercions).toBe(0);
    expect(checked.sourceStreams).toBe(0);
    expect(checked.executes).toBe(0);
  });

  it('ignores checked variables of another document or another variables object', async () => {
    const query = 'subscription ($input: TickInput!) { ticks(input: $input) { n } }';
    const variables = { input: { count: 2 } };
    // Were they taken, these would give four events instead of two.
    const stale = { input: { count: 4 } };
    const otherObject = await both(query, variables, (document) => ({ document, raw: { ...variables }, coerced: stale }));
    expect(otherObject.actual).toEqual(otherObject.expected);
    expect(otherObject.actual).toHaveLength(2);
    expect(otherObject.coercions).toBe(1);
    const otherDocument = await both(query, variables, () => ({ document: parse(query), raw: variables, coerced: stale }));
    expect(otherDocument.actual).toEqual(otherDocument.expected);
    expect(otherDocument.actual).toHaveLength(2);
  });

  it('locates a subscribe resolver that throws at the root field, as graphql-js does', async () => {
    const run = await both('subscription ($input: TickInput!) { ticks(input: $input) { n } }', { input: { count: -5 } });
    expect(run.sourceStreams).toBe(0);
    expect(run.actual).toEqual(run.expected);
    expect(run.actual).toEqual([{ errors: [{ message: 'count -5 is negative', locations: [{ line: 1, column: 37 }], path: ['ticks'] }] }]);
  });

  it('throws as graphql-js does when a subscribe resolver returns no stream', async () => {
    const schema = testSchema();
    const document = parse('subscription { ticks(input: { count: -1 }) { n } }');
    const expected = subscribe({ schema, document, contextValue: { seen: [] } });
    await expect(expected).rejects.toThrow('Subscription field must return Async Iterable. Received: { not: "a stream" }.');
    await expect(subscribeEvents({ schema, document, contextValue: { seen: [] } })).rejects.toThrow(
      'Subscription field must return Async Iterable. Received: { not: "a stream" }.',
    );
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
