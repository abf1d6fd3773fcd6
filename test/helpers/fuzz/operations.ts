import fc from 'fast-check';
import { EnumValue, anyValue, edgeNumber, edgeString, fuzzList, inputObject, literal, mostly, type FuzzValue } from './values';

/**
 * The schema's own operations (`completion`, `completions`, `fimCompletion`, `models`,
 * `balance`, `upstream`, `_entities`, `_service`, `createCompletion`, `evictCompletion`,
 * `completionStream`) with fuzzed inputs: each argument inline as a literal or passed as a
 * variable (sometimes declared with the wrong type). Valid inputs ask for few tokens, so
 * the completions they cost stay instant against the simulator.
 */

export interface FuzzOperation {
  query: string;
  variables?: Record<string, FuzzValue>;
  operationName?: string;
}

const enumOf = (...names: string[]) => fc.constantFrom(...names).map((name) => new EnumValue(name));

const prompt = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Hello', 'Explain DataLoader in one sentence.', 'Answer in json, please.', 'Bonjour') },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
  { weight: 1, arbitrary: edgeString },
);

/** Current, alias, retired and unknown model names (Object.prototype's members too), and edge strings. */
const modelName = fc.oneof(
  fc.constantFrom('deepseek-flash', 'deepseek-v4-pro', 'deepseek-v4-flash', 'deepseek-chat', 'deepseek-reasoner', 'gpt-4o', 'DeepSeek-Flash', 'constructor', '__proto__', 'toString'),
  edgeString,
);

const smallMaxTokens = fc.integer({ min: 1, max: 32 });

/** A CompletionInput DeepSeek would accept, asking for at most 32 tokens. */
const validCompletionInput: fc.Arbitrary<{ [key: string]: FuzzValue }> = fc.record(
  {
    prompt,
    thinking: fc.boolean(),
    maxTokens: smallMaxTokens,
    model: fc.constantFrom('deepseek-flash', 'deepseek-v4-pro', 'deepseek-v4-flash'),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    stop: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }),
    cache: enumOf('USE', 'BYPASS', 'REFRESH'),
  },
  { requiredKeys: ['prompt', 'maxTokens'] },
);

const message = inputObject({ role: mostly(enumOf('SYSTEM', 'USER', 'ASSISTANT', 'TOOL')), content: mostly(prompt) });

const stop = fuzzList(fc.oneof(edgeString, fc.string({ maxLength: 5 })), 's', 20);

/** Each field of CompletionInput: valid values and edge values, never null (see `mostly`). */
const completionFields: Record<string, fc.Arbitrary<FuzzValue>> = {
  prompt,
  system: edgeString,
  messages: fuzzList(message, { role: new EnumValue('USER'), content: 'x' }),
  model: modelName,
  thinking: fc.boolean(),
  reasoningEffort: enumOf('LOW', 'HIGH', 'MAX', 'NONE'),
  temperature: fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), edgeNumber),
  topP: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), edgeNumber),
  maxTokens: fc.oneof(smallMaxTokens, edgeNumber),
  stop,
  responseFormat: enumOf('TEXT', 'JSON_OBJECT', 'XML'),
  cache: enumOf('USE', 'BYPASS', 'REFRESH', 'ALWAYS'),
};

const fimFields: Record<string, fc.Arbitrary<FuzzValue>> = {
  prompt,
  suffix: edgeString,
  model: modelName,
  temperature: edgeNumber,
  topP: edgeNumber,
  maxTokens: fc.oneof(smallMaxTokens, edgeNumber),
  stop,
  cache: enumOf('USE', 'BYPASS', 'REFRESH'),
};

/** `valid` with one of `fields` replaced by a fuzzed value: how a single bad field gets past validation. */
function oneFieldOff(valid: fc.Arbitrary<{ [key: string]: FuzzValue }>, fields: Record<string, fc.Arbitrary<FuzzValue>>) {
  return fc
    .tuple(valid, fc.constantFrom(...Object.keys(fields)))
    .chain(([input, key]) => mostly(fields[key]!).map((value): FuzzValue => ({ ...input, [key]: value })));
}

/** Every field optional, each mostly valid, often with edge values. */
const mapValues = (fields: Record<string, fc.Arbitrary<FuzzValue>>) =>
  Object.fromEntries(Object.entries(fields).map(([key, arbitrary]) => [key, mostly(arbitrary)]));

export const completionInput: fc.Arbitrary<FuzzValue> = fc.oneof(
  { weight: 2, arbitrary: validCompletionInput },
  { weight: 3, arbitrary: oneFieldOff(validCompletionInput, completionFields) },
  { weight: 3, arbitrary: inputObject(mapValues(completionFields)) },
  { weight: 1, arbitrary: anyValue },
);

const validFimInput: fc.Arbitrary<{ [key: string]: FuzzValue }> = fc.record(
  { prompt, suffix: fc.string({ maxLength: 20 }), maxTokens: smallMaxTokens, model: fc.constantFrom('deepseek-flash', 'deepseek-v4-flash'), cache: enumOf('USE', 'BYPASS') },
  { requiredKeys: ['prompt', 'maxTokens'] },
);

export const fimInput: fc.Arbitrary<FuzzValue> = fc.oneof(
  { weight: 2, arbitrary: validFimInput },
  { weight: 3, arbitrary: oneFieldOff(validFimInput, fimFields) },
  { weight: 2, arbitrary: inputObject(mapValues(fimFields)) },
  { weight: 1, arbitrary: anyValue },
);

/** Completion ids: well-formed (stored or not), near misses, and anything. */
export const completionId: fc.Arbitrary<FuzzValue> = fc.oneof(
  fc.stringMatching(/^cmpl_v1_[A-Za-z0-9_-]{43}$/),
  fc.constantFrom(`cmpl_v1_${'A'.repeat(43)}`, `cmpl_v1_${'A'.repeat(42)}`, 'cmpl_v1_', `cmpl_v2_${'A'.repeat(43)}`),
  edgeString,
  fc.integer(),
  anyValue,
);

/** `_entities` representations: right-looking, wrong typename, missing or wrong-typed key, not objects. */
export const representation: fc.Arbitrary<FuzzValue> = fc.oneof(
  { weight: 4, arbitrary: inputObject({
    __typename: mostly(fc.oneof({ weight: 4, arbitrary: fc.constant('Completion') }, fc.constantFrom('Model', 'Query', 'completion', ''))),
    id: mostly(completionId),
  }) },
  { weight: 1, arbitrary: anyValue },
);

const completionSelection = fc
  .tuple(
    fc.subarray(['id', 'model', 'content', 'reasoningContent', 'finishReason', 'cached', 'createdAt', '__typename', 'usage { promptTokens completionTokens totalTokens reasoningTokens }'], { minLength: 1 }),
    fc.option(fc.constantFrom('nope', 'usage', 'id { x }', '...on Completion { id }', '... on Model { id }'), { freq: 10 }),
  )
  .map(([fields, odd]) => `{ ${[...fields, ...(odd ? [odd] : [])].join(' ')} }`);

const chunkSelection = fc
  .subarray(['id', 'index', 'model', 'delta', 'reasoningDelta', 'finishReason', 'cached', 'usage { totalTokens }'], { minLength: 1 })
  .map((fields) => `{ ${fields.join(' ')} }`);

interface FieldShape {
  type: 'query' | 'mutation' | 'subscription';
  field: string;
  args: Array<{ name: string; type: string; value: fc.Arbitrary<FuzzValue> }>;
  selection: fc.Arbitrary<string>;
}

const upstreamSelection = fc.constantFrom(
  '{ mode circuit inFlight queued calls retries }',
  '{ keys { fingerprint active reason } cache { store hits misses entries } }',
  '{ coalescing { upstreamCalls joinedInFlight batches meanBatchSize } streams { activeStreams subscribers } }',
  '{ circuitTransitions { to at } }',
  '{ keys }',
);

const SHAPES: FieldShape[] = [
  { type: 'query', field: 'completion', args: [{ name: 'input', type: 'CompletionInput!', value: completionInput }], selection: completionSelection },
  {
    type: 'query',
    field: 'completions',
    args: [{ name: 'inputs', type: '[CompletionInput!]!', value: fc.oneof(fuzzList(completionInput, { prompt: 'x', maxTokens: 1 }), anyValue) }],
    selection: completionSelection,
  },
  { type: 'query', field: 'fimCompletion', args: [{ name: 'input', type: 'FimInput!', value: fimInput }], selection: completionSelection },
  { type: 'query', field: 'models', args: [], selection: fc.constantFrom('{ id ownedBy contextWindow maxOutputTokens }', '{ id reasoningEffortLevels }', '{ __typename }') },
  { type: 'query', field: 'balance', args: [], selection: fc.constantFrom('{ isAvailable balances { currency totalBalance } }', '{ isAvailable }') },
  { type: 'query', field: 'upstream', args: [], selection: upstreamSelection },
  {
    type: 'query',
    field: '_entities',
    args: [{ name: 'representations', type: '[_Any!]!', value: fc.oneof({ weight: 4, arbitrary: fuzzList(representation, { __typename: 'Completion', id: 'x' }, 6) }, { weight: 1, arbitrary: anyValue }) }],
    selection: fc.constantFrom('{ ... on Completion { id content cached } }', '{ __typename }', '{ ... on Completion { usage { totalTokens } } }'),
  },
  { type: 'query', field: '_service', args: [], selection: fc.constantFrom('{ sdl }', '{ __typename }') },
  { type: 'mutation', field: 'createCompletion', args: [{ name: 'input', type: 'CompletionInput!', value: completionInput }], selection: completionSelection },
  { type: 'mutation', field: 'evictCompletion', args: [{ name: 'id', type: 'ID!', value: completionId }], selection: fc.constant('') },
  { type: 'subscription', field: 'completionStream', args: [{ name: 'input', type: 'CompletionInput!', value: completionInput }], selection: chunkSelection },
];

/** Declared types a client may get wrong (a nullable, a list, another input, a scalar, nothing known). */
const wrongType = fc.constantFrom('String', 'Int!', 'CompletionInput', '[CompletionInput]', 'FimInput!', 'ID', '[_Any]', 'Unknown!', '[[String!]!]');

/**
 * One root field as an operation. Each argument goes inline (`inline`) or as a variable;
 * a variable's declared type is sometimes wrong, and sometimes the variable is declared but
 * not sent. An alias and an operation name are added sometimes.
 */
function operationFor(shape: FieldShape): fc.Arbitrary<FuzzOperation> {
  const arg = (spec: FieldShape['args'][number]) =>
    fc.record({
      value: spec.value,
      inline: fc.boolean(),
      type: fc.oneof({ weight: 12, arbitrary: fc.constant(spec.type) }, { weight: 1, arbitrary: wrongType }),
      // A declared variable left out of the request, now and then.
      omitted: fc.nat({ max: 11 }).map((n) => n === 0),
    });
  return fc
    .record({
      args: fc.tuple(...shape.args.map(arg)),
      selection: shape.selection,
      alias: fc.option(fc.constantFrom('a', 'b', 'x_1', 'completion', 'models'), { freq: 4 }),
      name: fc.option(fc.constantFrom('Q', 'Fuzz', 'Op_1', 'completion'), { freq: 3 }),
    })
    .map(({ args, selection, alias, name }) => {
      const variables: Record<string, FuzzValue> = {};
      const definitions: string[] = [];
      const written = args.map((chosen, index) => {
        const spec = shape.args[index]!;
        if (chosen.inline) return `${spec.name}: ${literal(chosen.value)}`;
        definitions.push(`$${spec.name}: ${chosen.type}`);
        if (!chosen.omitted) variables[spec.name] = chosen.value;
        return `${spec.name}: $${spec.name}`;
      });
      const header = `${shape.type}${name ? ` ${name}` : ''}${definitions.length > 0 ? `(${definitions.join(', ')})` : ''}`;
      const call = `${alias ? `${alias}: ` : ''}${shape.field}${written.length > 0 ? `(${written.join(', ')})` : ''}`;
      return { query: `${header} { ${call} ${selection} }`, variables, ...(name ? { operationName: name } : {}) };
    });
}

/** One of the schema's operations with fuzzed inputs. */
export const schemaOperation: fc.Arbitrary<FuzzOperation> = fc.oneof(...SHAPES.map(operationFor));

/**
 * Subscriptions only (for WebSocket and SSE): `completionStream` with fuzzed inputs, or
 * with an input DeepSeek accepts (so streams run, and their errors mid-stream are seen).
 */
export const subscriptionOperation: fc.Arbitrary<FuzzOperation> = fc.oneof(
  operationFor(SHAPES.find((shape) => shape.type === 'subscription')!),
  fc.tuple(validCompletionInput, chunkSelection).map(([input, selection]) => ({
    query: `subscription Stream($input: CompletionInput!) { completionStream(input: $input) ${selection} }`,
    variables: { input },
    operationName: 'Stream',
  })),
);

/** Two or three of the schema's fields in one operation of the same type, as a client batching its reads would. */
export const combinedOperation: fc.Arbitrary<FuzzOperation> = fc
  .array(fc.oneof(...SHAPES.filter((shape) => shape.type === 'query').map(operationFor)), { minLength: 2, maxLength: 3 })
  .map((operations) => {
    // Inline every argument's value so the fields combine without variable clashes.
    const bodies = operations.map((operation, index) => {
      let body = operation.query.slice(operation.query.indexOf('{') + 1, operation.query.lastIndexOf('}'));
      for (const [name, value] of Object.entries(operation.variables ?? {})) body = body.split(`$${name}`).join(literal(value));
      return `f${index}: ${body.trim().replace(/^\w+: /, '')}`;
    });
    return { query: `{ ${bodies.join(' ')} }` };
  });
