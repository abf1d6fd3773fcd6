import fc from 'fast-check';
import { isEnumType, isInputObjectType, isObjectType, type GraphQLSchema } from 'graphql';
import { buildSchema } from '../../../src/graphql/schema';
import { combinedOperation, schemaOperation, type FuzzOperation } from './operations';
import { edgeString } from './values';

/**
 * GraphQL documents for the fuzzer, three kinds mixed: (a) arbitrary text and unicode;
 * (b) documents from a small GraphQL grammar, lexically valid so they reach validation
 * (operations, aliases, arguments with literals of every kind, variable definitions,
 * directives, fragments that spread each other, inline fragments, very long names; now and
 * then one bomb: a selection past the depth limit, one repeated up to 400 times, a literal
 * nested 1,200 levels) over names from the schema and from nowhere; (c) the schema's own
 * operations with fuzzed inputs (./operations.ts). (b) and (c) may then be mutated as text
 * (a few characters inserted or cut), which is where most lexical errors come from.
 */

interface Vocabulary {
  types: string[];
  fields: string[];
  args: string[];
  enumValues: string[];
  directives: string[];
}

/** The names the schema knows, so generated documents often get past "unknown field". */
function vocabulary(schema: GraphQLSchema): Vocabulary {
  const types = new Set<string>();
  const fields = new Set<string>();
  const args = new Set<string>();
  const enumValues = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__')) continue;
    types.add(type.name);
    if (isObjectType(type)) {
      for (const field of Object.values(type.getFields())) {
        fields.add(field.name);
        for (const arg of field.args) args.add(arg.name);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) args.add(field.name);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) enumValues.add(value.name);
    }
  }
  const directives = schema.getDirectives().map((directive) => directive.name);
  const sorted = (names: Set<string>) => [...names].sort();
  return { types: sorted(types), fields: sorted(fields), args: sorted(args), enumValues: sorted(enumValues), directives };
}

const names = vocabulary(buildSchema());

const randomName = fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,12}$/);
/** Past GRAPHQL_MAX_OPERATION_NAME_LENGTH (128), up to two thousand characters. */
const longName = fc.integer({ min: 129, max: 2000 }).map((length) => 'L'.repeat(length));

const fieldName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...names.fields) },
  { weight: 2, arbitrary: randomName },
  { weight: 1, arbitrary: fc.constantFrom('__typename', '__schema', '__type', '__proto__', 'constructor') },
  { weight: 1, arbitrary: longName },
);
const typeName = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...names.types) }, { weight: 1, arbitrary: randomName }, { weight: 1, arbitrary: longName });
const argName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...names.args) }, { weight: 1, arbitrary: randomName });
const directiveName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...names.directives) },
  { weight: 1, arbitrary: fc.constantFrom('defer', 'stream', 'key', 'oneOf', 'live') },
  { weight: 1, arbitrary: randomName },
);
const variableName = fc.constantFrom('input', 'inputs', 'id', 'representations', 'v', 'flag');
const fragmentName = fc.constantFrom('F0', 'F1', 'F2', 'F3', `F${'x'.repeat(200)}`);
const operationName = fc.oneof(fc.constantFrom('Q', 'Fuzz', 'A'), randomName, longName);

/** Any text as a GraphQL string: lone surrogates (which GraphQL cannot escape) replaced. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const graphqlString = (text: string): string => JSON.stringify(text.replace(LONE_SURROGATE, '\uFFFD'));

/**
 * Literals of every kind, all lexically valid: the grammar's documents are for validation
 * and execution; lexical errors come from the text kinds (arbitrary and mutated text).
 */
const scalarLiteral = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('0', '-1', '1.5', '-0.0', '1e400', '-1e-400', '2147483648', '99999999999999999999', 'true', 'false', 'null', 'NaN') },
  { weight: 1, arbitrary: fc.constantFrom('""', '"""block"""', '"\\u0000"', '"\\u{1F600}"') },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String) },
  // Up to 100 characters here: the 10 KB strings of ./operations.ts, repeated by the
  // grammar, would make documents of megabytes.
  { weight: 2, arbitrary: edgeString.filter((text) => text.length <= 100).map(graphqlString) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20, unit: fc.constantFrom(...'abc xyz\n\t{}$@!é😀') }).map((text) => `"""${text}"""`) },
  { weight: 2, arbitrary: fc.constantFrom(...names.enumValues) },
);
const variable = variableName.map((name) => `$${name}`);

/** Lists and objects nested up to 1,200 levels (past the token limit from about 1,000). */
const deepLiteral = fc
  .tuple(fc.integer({ min: 10, max: 1200 }), fc.boolean(), scalarLiteral)
  .map(([depth, list, leaf]) => (list ? `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}` : `${'{a: '.repeat(depth)}${leaf}${'}'.repeat(depth)}`));

/** Nested literals; `constant` leaves variables out (default values and variable directives must be constant). */
function literalValue(constant: boolean): fc.Arbitrary<string> {
  const leaf = constant ? scalarLiteral : fc.oneof({ weight: 5, arbitrary: scalarLiteral }, { weight: 1, arbitrary: variable });
  const { value } = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 2, depthIdentifier: constant ? 'constant' : 'literal' },
      leaf,
      fc.array(tie('value'), { maxLength: 3 }).map((items) => `[${items.join(', ')}]`),
      fc.array(fc.tuple(argName, tie('value')), { maxLength: 3 }).map((entries) => `{${entries.map(([key, item]) => `${key}: ${item}`).join(', ')}}`),
    ),
  }));
  return value;
}
const value = literalValue(false);
const constantValue = literalValue(true);

const argumentsOf = (values: fc.Arbitrary<string>) =>
  fc.array(fc.tuple(argName, values), { minLength: 1, maxLength: 2 }).map((items) => `(${items.map(([name, text]) => `${name}: ${text}`).join(', ')})`);
const argumentsText = argumentsOf(value);
const directivesOf = (values: fc.Arbitrary<string>) => {
  const directives = fc
    .array(fc.tuple(directiveName, fc.option(argumentsOf(values), { nil: '' })), { maxLength: 2 })
    .map((items) => items.map(([name, args]) => ` @${name}${args}`).join(''));
  return fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: directives });
};
const rareDirectives = directivesOf(value);

/** `T`, `[T]`, `T!`, `[[T!]]!` …: a variable's declared type. */
const typeReference = fc
  .tuple(typeName, fc.nat({ max: 3 }), fc.boolean(), fc.boolean())
  .map(([name, lists, innerBang, outerBang]) => {
    let text = `${name}${innerBang ? '!' : ''}`;
    for (let i = 0; i < lists; i++) text = `[${text}]`;
    return lists > 0 && outerBang ? `${text}!` : text;
  });

const variableDefinitions = fc
  .array(fc.tuple(variableName, typeReference, fc.option(constantValue, { freq: 3 }), directivesOf(constantValue)), { minLength: 1, maxLength: 3 })
  .map((items) => `(${items.map(([name, type, fallback, dirs]) => `$${name}: ${type}${fallback === null ? '' : ` = ${fallback}`}${dirs}`).join(', ')})`);

/**
 * Selection sets by depth (built once per depth: building them recursively would build the
 * same arbitraries over and over). Depth 0 holds leaves only.
 */
function selectionSets(maxDepth: number): Array<fc.Arbitrary<string>> {
  const alias = fc.option(fc.oneof(fc.constantFrom('a', 'b', 'c'), randomName).map((name) => `${name}: `), { freq: 3, nil: '' });
  const leaf = fc.tuple(alias, fieldName, fc.option(argumentsText, { freq: 4, nil: '' }), rareDirectives).map((parts) => parts.join(''));
  const spread = fc.tuple(fragmentName, rareDirectives).map(([name, dirs]) => `...${name}${dirs}`);
  const sets: Array<fc.Arbitrary<string>> = [fc.array(fc.oneof(leaf, spread), { minLength: 1, maxLength: 3 }).map((items) => `{ ${items.join(' ')} }`)];
  for (let depth = 1; depth <= maxDepth; depth++) {
    const below = sets[depth - 1]!;
    const field = fc
      .tuple(alias, fieldName, fc.option(argumentsText, { freq: 3, nil: '' }), rareDirectives, fc.option(below, { freq: 2, nil: '' }))
      .map(([name, field, args, dirs, selection]) => `${name}${field}${args}${dirs} ${selection}`);
    const inline = fc.tuple(fc.option(typeName, { nil: undefined }), rareDirectives, below).map(([type, dirs, selection]) => `...${type ? ` on ${type}` : ''}${dirs} ${selection}`);
    const kinds = [{ weight: 6, arbitrary: field }, { weight: 1, arbitrary: inline }, { weight: 1, arbitrary: spread }];
    sets.push(fc.array(fc.oneof(...kinds), { minLength: 1, maxLength: 3 }).map((items) => `{ ${items.join(' ')} }`));
  }
  return sets;
}

const selectionSet = selectionSets(3);

/**
 * The outermost selection set of an abusive operation, one bomb each: past GRAPHQL_MAX_DEPTH
 * (unknown fields, or introspection, which the depth limit exempts); the same selection up
 * to 400 times (an alias or field bomb); a literal nested up to 1,200 levels (past the
 * token limit from about 1,000).
 */
const bombSelection = fc.oneof(
  fc
    .tuple(fc.integer({ min: 5, max: 700 }), fc.boolean())
    .map(([depth, introspection]) =>
      introspection
        ? `{ __type(name: "Query") { fields { type ${'{ ofType '.repeat(depth)}{ name }${' }'.repeat(depth)} } } }`
        : `{ ${'upstream { '.repeat(depth)}mode${' }'.repeat(depth)} }`,
    ),
  fc
    .tuple(fc.option(fc.constantFrom('a: ', 'b: '), { nil: '' }), fc.constantFrom(...names.fields, '__typename'), fc.option(selectionSet[0]!, { nil: '' }), fc.integer({ min: 2, max: 400 }))
    .map(([alias, field, selection, times]) => `{ ${Array.from({ length: times }, () => `${alias}${field} ${selection}`).join(' ')} }`),
  fc.tuple(fieldName, argName, deepLiteral).map(([field, name, literal]) => `{ ${field}(${name}: ${literal}) { id } }`),
);

const operationDefinition = fc
  .tuple(
    fc.constantFrom('query', 'mutation', 'subscription', ''),
    fc.option(operationName, { nil: '' }),
    fc.option(variableDefinitions, { freq: 3, nil: '' }),
    rareDirectives,
    fc.oneof({ weight: 6, arbitrary: selectionSet[3]! }, { weight: 1, arbitrary: bombSelection }),
  )
  .map(([type, name, definitions, dirs, selection]) => (type === '' ? selection : `${type}${name ? ` ${name}` : ''}${definitions}${dirs} ${selection}`));

const fragmentDefinition = fc
  .tuple(fragmentName, typeName, rareDirectives, selectionSet[2]!)
  .map(([name, type, dirs, selection]) => `fragment ${name} on ${type}${dirs} ${selection}`);

/** (b) A document of one to three operations and up to four fragments (which may spread each other, or themselves). */
export const grammarDocument: fc.Arbitrary<string> = fc
  .tuple(fc.array(operationDefinition, { minLength: 1, maxLength: 3 }), fc.array(fragmentDefinition, { maxLength: 4 }))
  .map(([operations, fragments]) => [...operations, ...fragments].join('\n'));

/** (a) Text that is rarely GraphQL: any unicode, lone surrogates, control characters, GraphQL-ish token soup. */
export const arbitraryText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.constantFrom('', ' ', '{', '}', '{}', '#', '\uFEFF{ __typename }', '{ __typename }\u0000', '{ __typename', 'query', 'subscription S { completionStream }'),
  fc
    .array(fc.constantFrom('{', '}', '(', ')', '[', ']', '...', '$', '@', ':', '=', '!', '|', '&', '"', '"""', 'on', 'query', 'fragment', 'completion', 'x', '1', '#\n'), { maxLength: 60 })
    .map((tokens) => tokens.join(' ')),
);

/** A few characters inserted or cut at random places: near-valid documents, the parser's edge. */
function mutatedText(source: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const insertion = fc.oneof(
    fc.constantFrom('{', '}', '(', ')', '...', '$', '@', ':', '"', '"""', '!', '[', ']', '#', '\\u', '\u0000', ' on ', 'fragment ', '1.', '0x1F', '"\\uD800"'),
    fc.string({ unit: 'binary', maxLength: 5 }),
  );
  return fc.tuple(source, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), insertion), { minLength: 1, maxLength: 3 })).map(([text, edits]) =>
    edits.reduce((current, [at, cut, inserted]) => {
      const position = at % (current.length + 1);
      return current.slice(0, position) + inserted + current.slice(position + cut);
    }, text),
  );
}

const asOperation = (query: string): FuzzOperation => ({ query });

/** Every kind of document, as an operation (the schema's operations keep their variables). */
export const fuzzOperation: fc.Arbitrary<FuzzOperation> = fc.oneof(
  { weight: 2, arbitrary: arbitraryText.map(asOperation) },
  { weight: 4, arbitrary: grammarDocument.map(asOperation) },
  { weight: 5, arbitrary: schemaOperation },
  { weight: 1, arbitrary: combinedOperation },
  { weight: 2, arbitrary: fc.tuple(mutatedText(fc.oneof(grammarDocument, schemaOperation.map((operation) => operation.query))), schemaOperation).map(([query, { variables }]) => ({ query, variables })) },
);
