import { canonicalJson, completionId, isCompletionId } from '../../src/cache/key';
import type { ChatRequest, CompletionRequest, FimRequest } from '../../src/deepseek/types';

const chat: ChatRequest = {
  kind: 'chat',
  model: 'deepseek-flash',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello' },
  ],
  temperature: 0.7,
};

describe('completionId', () => {
  it('is a versioned, url-safe content address', () => {
    const id = completionId(chat);
    expect(id).toMatch(/^cmpl_v1_[A-Za-z0-9_-]{43}$/);
    expect(isCompletionId(id)).toBe(true);
  });

  it('is stable for equal requests whatever the key order', () => {
    const reordered = {
      temperature: 0.7,
      messages: [
        { content: 'Be brief.', role: 'system' },
        { content: 'Hello', role: 'user' },
      ],
      model: 'deepseek-flash',
      kind: 'chat',
    } as ChatRequest;
    expect(completionId(reordered)).toBe(completionId(chat));
    expect(completionId(structuredClone(chat))).toBe(completionId(chat));
  });

  it('treats an undefined field as absent', () => {
    expect(completionId({ ...chat, thinking: undefined, stop: undefined })).toBe(completionId(chat));
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it.each<[string, Partial<ChatRequest>]>([
    ['model', { model: 'deepseek-pro' }],
    ['a message', { messages: [{ role: 'user', content: 'Hello!' }] }],
    ['message order', { messages: [chat.messages[1], chat.messages[0]] }],
    ['a role', { messages: [{ role: 'user', content: 'Be brief.' }, chat.messages[1]] }],
    ['temperature', { temperature: 0.8 }],
    ['topP', { topP: 0.9 }],
    ['thinking on', { thinking: true }],
    ['thinking off', { thinking: false }],
    ['reasoningEffort', { reasoningEffort: 'high' }],
    ['maxTokens', { maxTokens: 64 }],
    ['stop', { stop: ['\n'] }],
    ['responseFormat', { responseFormat: 'json_object' }],
  ])('changes with %s', (_name, change) => {
    expect(completionId({ ...chat, ...change })).not.toBe(completionId(chat));
  });

  it('tells stop sequences apart by order and content', () => {
    expect(completionId({ ...chat, stop: ['a', 'b'] })).not.toBe(completionId({ ...chat, stop: ['b', 'a'] }));
  });

  it('keeps chat and FIM requests apart', () => {
    const fim: FimRequest = { kind: 'fim', model: 'deepseek-flash', prompt: 'Hello', temperature: 0.7 };
    const lookalike = { ...fim, kind: 'chat' } as unknown as CompletionRequest;
    expect(completionId(fim)).not.toBe(completionId(lookalike));
    expect(completionId(fim)).not.toBe(completionId({ ...fim, suffix: '}' }));
  });
});

describe('isCompletionId', () => {
  it.each(['', 'cmpl_v1_', 'cmpl_v2_' + 'a'.repeat(43), 'cmpl_v1_' + 'a'.repeat(42), 'cmpl_v1_' + 'a'.repeat(44), 'cmpl_v1_' + '+'.repeat(43), `cmpl_v1_${'a'.repeat(43)}\n`, 'dsgw:cmpl_v1_' + 'a'.repeat(43)])(
    'rejects %j',
    (id) => {
      expect(isCompletionId(id)).toBe(false);
    },
  );

  it('rejects non-strings without throwing', () => {
    expect(isCompletionId(42 as unknown as string)).toBe(false);
  });
});

describe('canonicalJson', () => {
  /** The first implementation, kept as the reference the form must never drift from. */
  function reference(value: unknown): string {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    if (Array.isArray(value)) return `[${value.map((item: unknown) => reference(item)).join(',')}]`;
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(record[key])}`).join(',')}}`;
  }

  it('spells every value exactly as the reference does: key order, undefined, escapes, nesting', () => {
    const samples: unknown[] = [
      null,
      undefined,
      0,
      -1.5e-7,
      'plain',
      'quote " backslash \\ newline \n tab \t \u2028 \u0000 é 😀',
      [],
      {},
      [undefined, null, () => 1, { a: undefined }],
      { z: 1, a: [1, 2, { y: undefined, x: 'x' }], m: { b: true, a: false } },
      { 'needs "escape"': 1, 'dash-key': 2, '': 3, ünï: 4, 'new\nline': 5, _under: 6, '0': 7, '10': 8, '9': 9 },
      { kind: 'chat', model: 'deepseek-flash', messages: [{ role: 'user', content: 'hi' }], maxTokens: undefined, stop: ['a', 'b'] },
      // Code unit order, not code point order: U+FFFF sorts after the surrogates of 😀.
      { '\uffff': 1, '😀': 2, 'é': 3, e: 4 },
      // Keys in reverse order, below and above the size at which the native sort takes over.
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${String(19 - i).padStart(2, '0')}`, i])),
      Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${String(39 - i).padStart(2, '0')}`, i])),
    ];
    for (const sample of samples) expect(canonicalJson(sample)).toBe(reference(sample));
    // Random nested values too.
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const make = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.3) return [null, 1, 'a"b', undefined, true, 2.5][Math.floor(random() * 6)];
      if (r < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => make(depth + 1));
      const object: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(random() * 5); i += 1) object[['k', 'a-b', 'é', 'Z', '1'][Math.floor(random() * 5)]! + String(i)] = make(depth + 1);
      return object;
    };
    for (let i = 0; i < 500; i += 1) {
      const value = make(0);
      expect(canonicalJson(value)).toBe(reference(value));
    }
  });
});

describe('completionId memo', () => {
  const request = (content: string): ChatRequest => ({ kind: 'chat', model: 'deepseek-flash', messages: [{ role: 'user', content }] });
  // The module object itself (src/cache/key.ts calls its `hash`), not an import's namespace copy.
  const crypto = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  let hashes: jest.SpyInstance;

  beforeEach(() => {
    hashes = jest.spyOn(crypto, 'hash');
  });

  afterEach(() => {
    hashes.mockRestore();
  });

  it('hashes an equal request (another object) once, and keeps the 4,096 most recently used forms', () => {
    const tag = `memo ${Date.now()} ${Math.random()}`;
    const first = completionId(request(`${tag} first`));
    expect(hashes).toHaveBeenCalledTimes(1);
    // Another object with the same content: remembered, not hashed again.
    expect(completionId(request(`${tag} first`))).toBe(first);
    expect(hashes).toHaveBeenCalledTimes(1);

    const kept = completionId(request(`${tag} kept`));
    for (let index = 0; index < 5000; index += 1) {
      completionId(request(`${tag} ${index}`));
      // Used again now and then: the least recently used go first, not the oldest.
      if (index % 1000 === 0) completionId(request(`${tag} kept`));
    }
    hashes.mockClear();
    expect(completionId(request(`${tag} kept`))).toBe(kept);
    expect(hashes).not.toHaveBeenCalled();
    // 5,000 other forms later, the first is forgotten: hashed again, to the same id.
    expect(completionId(request(`${tag} first`))).toBe(first);
    expect(hashes).toHaveBeenCalledTimes(1);
  });

  it('does not remember a long canonical form', () => {
    const long = request(`memo long ${Math.random()} ${'x'.repeat(3000)}`);
    const id = completionId(long);
    hashes.mockClear();
    expect(completionId({ ...long, messages: [...long.messages] })).toBe(id);
    expect(hashes).toHaveBeenCalledTimes(1);
  });
});
