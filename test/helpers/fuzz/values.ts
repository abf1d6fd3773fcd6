import fc from 'fast-check';

/**
 * Input values for fuzzed operations, written once and sent two ways: inline in the
 * document as GraphQL literals (`literal`) or as JSON variables. Edge values are the ones
 * validation code gets wrong: NaN-like strings, numbers past Int and Float, negatives,
 * empty and 10 KB strings, unicode (lone surrogates included), nulls and wrong types.
 */

/** An enum value: a bare name in a literal, a string in JSON. */
export class EnumValue {
  constructor(readonly name: string) {}
  toJSON(): string {
    return this.name;
  }
}

export type FuzzValue = null | boolean | number | string | EnumValue | FuzzValue[] | { [key: string]: FuzzValue };

/** `value` as a GraphQL literal (non-finite numbers as the out-of-range text a client could send). */
export function literal(value: FuzzValue | undefined): string {
  if (value === undefined || value === null) return 'null';
  if (value instanceof EnumValue) return value.name;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? '1e400' : '-1e400';
    return String(value);
  }
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([key, item]) => `${key}: ${literal(item)}`)
    .join(', ')}}`;
}

/** 10 KB of text, the size a careless client or an attacker sends in one field. */
const TEN_KB = 10 * 1024;

export const edgeString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', '\n\t', 'NaN', 'Infinity', '-Infinity', 'null', 'undefined', '0', '-1', '1e999', '0x10', '__proto__', 'constructor', 'toString', 'json'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).map((unit) => unit.repeat(Math.ceil(TEN_KB / unit.length))),
  fc.constant('x'.repeat(TEN_KB)),
);

export const edgeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 2, 2.0001, 393_216, 393_217, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  fc.integer(),
  fc.double(),
);

/** Any JSON-ish value, of the wrong type more often than not. */
export const anyValue: fc.Arbitrary<FuzzValue> = fc.oneof(
  edgeString,
  edgeNumber,
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('USER', 'SYSTEM', 'USE', 'MAX', 'TEXT').map((name) => new EnumValue(name)),
  fc.constant<FuzzValue>([]),
  fc.constant<FuzzValue>({}),
);

/** Mostly `valid`, sometimes an edge value or one of the wrong type, sometimes null. */
export function mostly<T extends FuzzValue>(valid: fc.Arbitrary<T>): fc.Arbitrary<FuzzValue> {
  return fc.oneof({ weight: 6, arbitrary: valid }, { weight: 2, arbitrary: anyValue }, { weight: 1, arbitrary: fc.constant(null) });
}

/** An object of the optional `fields`, sometimes with an unknown or prototype-polluting key. */
export function inputObject(fields: Record<string, fc.Arbitrary<FuzzValue>>): fc.Arbitrary<{ [key: string]: FuzzValue }> {
  const extra = fc.option(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'unknownField', 'id', 'PROMPT'), anyValue), { freq: 8 });
  return fc.tuple(fc.record(fields, { requiredKeys: [] }), extra).map(([object, added]) => {
    const result: { [key: string]: FuzzValue } = { ...(object as { [key: string]: FuzzValue }) };
    // defineProperty, not assignment: `__proto__` must become an own key that JSON keeps.
    if (added) Object.defineProperty(result, added[0], { value: added[1], enumerable: true, configurable: true, writable: true });
    return result;
  });
}

/**
 * A list of `item`, usually short; sometimes at, just past or far past GRAPHQL_MAX_LIST_ITEMS
 * (1000), made of `filler` (a small value, so the request stays a few hundred KB).
 */
export function fuzzList<T extends FuzzValue>(item: fc.Arbitrary<T>, filler: FuzzValue, shortMax = 4): fc.Arbitrary<FuzzValue[]> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.array(item, { maxLength: shortMax }) },
    { weight: 1, arbitrary: fc.constantFrom(1000, 1001, 5000).map((count) => Array.from({ length: count }, () => filler)) },
  );
}
