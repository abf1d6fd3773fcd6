import { boundedJson, HotAnswers, MAX_KEY_CHARS } from '../../src/graphql/hot-answers';

describe('hot-answer keys', () => {
  it('writes JSON as JSON.stringify does, within a budget', () => {
    const value = { input: { prompt: 'a "quoted" é', n: [1, null, true, 2.5], nested: { b: {} } }, empty: [] };
    expect(boundedJson(value, 1000)).toBe(JSON.stringify(value));
    expect(boundedJson(value, JSON.stringify(value).length)).toBe(JSON.stringify(value));
    expect(boundedJson(value, JSON.stringify(value).length - 1)).toBeUndefined();
  });

  it('gives up early on long strings and deep nesting instead of serialising them', () => {
    expect(boundedJson({ prompt: 'x'.repeat(10_000) }, 100)).toBeUndefined();
    let deep: unknown = 1;
    for (let i = 0; i < 100; i += 1) deep = [deep];
    expect(boundedJson(deep, 10_000)).toBeUndefined();
  });

  it('keys a request by method, Accept, name, variables and document, and refuses what it cannot key', () => {
    const raw = { query: '{ __typename }', operationName: 'A', variables: { a: 1 } };
    const key = HotAnswers.keyOf('POST', raw, 'application/json');
    expect(key).toBeDefined();
    expect(HotAnswers.keyOf('POST', { ...raw }, 'application/json')).toBe(key);
    expect(HotAnswers.keyOf('GET', raw, 'application/json')).not.toBe(key);
    expect(HotAnswers.keyOf('POST', raw, undefined)).not.toBe(key);
    expect(HotAnswers.keyOf('POST', { ...raw, operationName: 'B' }, 'application/json')).not.toBe(key);
    expect(HotAnswers.keyOf('POST', { ...raw, variables: { a: 2 } }, 'application/json')).not.toBe(key);
    // Not keyed: persisted-query extensions, no document, odd names or variables, too long.
    expect(HotAnswers.keyOf('POST', { ...raw, extensions: { persistedQuery: {} } }, undefined)).toBeUndefined();
    expect(HotAnswers.keyOf('POST', { variables: {} }, undefined)).toBeUndefined();
    expect(HotAnswers.keyOf('POST', { ...raw, operationName: 7 }, undefined)).toBeUndefined();
    // A name that is not a GraphQL name (it could hold the key's separator) is not keyed.
    expect(HotAnswers.keyOf('POST', { ...raw, operationName: 'A\n{"a":1}' }, undefined)).toBeUndefined();
    expect(HotAnswers.keyOf('POST', { ...raw, variables: [1] }, undefined)).toBeUndefined();
    expect(HotAnswers.keyOf('POST', { query: 'x'.repeat(MAX_KEY_CHARS + 1) }, undefined)).toBeUndefined();
    expect(HotAnswers.keyOf('POST', { ...raw, variables: { p: 'x'.repeat(MAX_KEY_CHARS) } }, undefined)).toBeUndefined();
    expect(HotAnswers.keyOf('POST', raw, 'a'.repeat(1000))).toBeUndefined();
  });
});
