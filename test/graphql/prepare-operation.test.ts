import { buildSchema } from 'graphql';
import { ErrorCode } from '../../src/errors';
import { queryLimitRules, queryLimits, parseOptions } from '../../src/graphql/limits';
import { prepareSubscription, VALID_DOCUMENT_MAX_CHARS, ValidDocuments, type DocumentChecks } from '../../src/graphql/prepare-operation';
import { testConfig } from '../../src/config';

const schema = buildSchema(`
  type Query { ping: String }
  type Chunk { delta: String }
  type Subscription { stream(prompt: String!): Chunk }
`);

const STREAM = 'subscription ($p: String!) { stream(prompt: $p) { delta } }';

function checks(documents?: ValidDocuments): DocumentChecks {
  const limits = queryLimits(testConfig().graphql);
  return { rules: queryLimitRules(limits), parse: parseOptions(limits), documents };
}

function documentOf(prepared: ReturnType<typeof prepareSubscription>) {
  if ('errors' in prepared) throw new Error(`refused: ${prepared.errors.map((e) => e.message).join('; ')}`);
  return prepared.document;
}

describe('prepareSubscription with kept documents', () => {
  it('parses and validates a document once, then reuses it with each payload its own variables', () => {
    const documents = new ValidDocuments(10, 1024 * 1024);
    const first = prepareSubscription(schema, checks(documents), { query: STREAM, variables: { p: 'a' } }, 'WebSocket');
    const second = prepareSubscription(schema, checks(documents), { query: STREAM, variables: { p: 'b' } }, 'WebSocket');
    expect(documentOf(second)).toBe(documentOf(first));
    expect(second).toMatchObject({ variableValues: { p: 'b' }, rootField: 'stream' });
    expect(documents.size).toBe(1);
    // Without a store every payload is parsed again.
    const a = prepareSubscription(schema, checks(), { query: STREAM, variables: { p: 'a' } }, 'WebSocket');
    const b = prepareSubscription(schema, checks(), { query: STREAM, variables: { p: 'a' } }, 'WebSocket');
    expect(documentOf(a)).not.toBe(documentOf(b));
  });

  it('hands back the variables as graphql-js coerced them (defaults in), for subscribeEvents to take instead of coercing them again', () => {
    const withDefault = 'subscription ($p: String = "fallback") { stream(prompt: $p) { delta } }';
    const prepared = prepareSubscription(schema, checks(), { query: withDefault, variables: {} }, 'WebSocket');
    expect(prepared).toMatchObject({ variableValues: {}, coercedVariables: { p: 'fallback' } });
    const given = prepareSubscription(schema, checks(), { query: withDefault, variables: { p: 'a' } }, 'WebSocket');
    expect(given).toMatchObject({ variableValues: { p: 'a' }, coercedVariables: { p: 'a' } });
  });

  it('never keeps a document that failed, so it fails the same way every time', () => {
    const documents = new ValidDocuments(10, 1024 * 1024);
    const invalid = 'subscription { stream(prompt: "x") { nope } }';
    for (let i = 0; i < 2; i += 1) {
      const prepared = prepareSubscription(schema, checks(documents), { query: invalid }, 'WebSocket');
      expect('errors' in prepared && prepared.errors[0]!.extensions.code).toBe(ErrorCode.GRAPHQL_VALIDATION_FAILED);
    }
    const unparsable = prepareSubscription(schema, checks(documents), { query: 'subscription {' }, 'WebSocket');
    expect('errors' in unparsable && unparsable.errors[0]!.extensions.code).toBe(ErrorCode.GRAPHQL_PARSE_FAILED);
    expect(documents.size).toBe(0);
  });

  it('checks the operation and the variables of a kept document on every payload', () => {
    const documents = new ValidDocuments(10, 1024 * 1024);
    const both = 'subscription S($p: String!) { stream(prompt: $p) { delta } } query Q { ping }';
    documentOf(prepareSubscription(schema, checks(documents), { query: both, operationName: 'S', variables: { p: 'a' } }, 'WebSocket'));
    // The same kept document, asked for its query operation: refused as before.
    const query = prepareSubscription(schema, checks(documents), { query: both, operationName: 'Q' }, 'WebSocket');
    expect('errors' in query && query.errors[0]!.extensions.code).toBe(ErrorCode.BAD_REQUEST);
    const missing = prepareSubscription(schema, checks(documents), { query: STREAM, variables: {} }, 'WebSocket');
    documentOf(prepareSubscription(schema, checks(documents), { query: STREAM, variables: { p: 'a' } }, 'WebSocket'));
    const again = prepareSubscription(schema, checks(documents), { query: STREAM, variables: {} }, 'WebSocket');
    expect('errors' in missing && missing.errors[0]!.extensions.code).toBe(ErrorCode.BAD_USER_INPUT);
    expect('errors' in again && again.errors[0]!.extensions.code).toBe(ErrorCode.BAD_USER_INPUT);
  });

  it('is bounded: by entries, by the estimated size of the documents, and never keeps one too long', () => {
    const byCount = new ValidDocuments(3, 1024 * 1024);
    for (let i = 0; i < 10; i += 1) {
      documentOf(prepareSubscription(schema, checks(byCount), { query: `${STREAM} # ${i}`, variables: { p: 'a' } }, 'WebSocket'));
    }
    expect(byCount.size).toBe(3);

    // Eight bytes counted per character: 1 KiB holds two documents of about 60 characters.
    const bySize = new ValidDocuments(100, 1024);
    for (let i = 0; i < 10; i += 1) {
      documentOf(prepareSubscription(schema, checks(bySize), { query: `${STREAM} # ${i}`, variables: { p: 'a' } }, 'WebSocket'));
    }
    expect(bySize.size).toBe(2);

    const roomy = new ValidDocuments(100, 64 * 1024 * 1024);
    const long = `${STREAM} #${'x'.repeat(VALID_DOCUMENT_MAX_CHARS)}`;
    documentOf(prepareSubscription(schema, checks(roomy), { query: long, variables: { p: 'a' } }, 'WebSocket'));
    expect(roomy.size).toBe(0);
  });
});
