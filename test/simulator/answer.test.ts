import { simulatedAnswer } from '../../src/simulator';
import { tokenize } from '../../src/simulator/answer';

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'deepseek-flash',
  messages: [{ role: 'user', content }],
  ...extra,
});

describe('simulatedAnswer', () => {
  it('tokenizes so that joined tokens reproduce the text exactly', () => {
    for (const text of ['', 'one', 'two words', '  leading and trailing  ', 'tabs\tand\nnewlines\n\n']) {
      expect(tokenize(text).join('')).toBe(text);
    }
    expect(tokenize('a  b c')).toEqual(['a  ', 'b ', 'c']);
  });

  it('is a pure function of the fields that shape the answer', () => {
    const base = simulatedAnswer(chat('same'));
    expect(simulatedAnswer(chat('same'))).toEqual(base);
    // Defaults spelled out give the same answer as leaving them unset.
    expect(simulatedAnswer(chat('same', { temperature: 1, top_p: 1, thinking: { type: 'enabled' }, reasoning_effort: 'high' }))).toEqual(base);
    expect(simulatedAnswer(chat('same', { reasoning_effort: 'medium' }))).toEqual(base);
    // Fields that do not shape the answer are ignored.
    expect(simulatedAnswer(chat('same', { stream: true, user_id: 'u1' }))).toEqual(base);
    for (const extra of [{ temperature: 0.2 }, { top_p: 0.5 }, { max_tokens: 500 }, { stop: ['zzz'] }, { reasoning_effort: 'max' }]) {
      expect(simulatedAnswer(chat('same', extra)).content).not.toBe(base.content);
    }
    expect(simulatedAnswer(chat('other')).content).not.toBe(base.content);
    expect(simulatedAnswer({ ...chat('same'), model: 'deepseek-v4-pro' }).content).toMatch(/^Simulated deepseek-v4-pro answer/);
  });

  it('echoes at most 24 words of the last user message', () => {
    const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const { content } = simulatedAnswer({
      model: 'deepseek-flash',
      messages: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: long },
      ],
    });
    expect(content).toContain('"w0 w1');
    expect(content).toContain('w23"');
    expect(content).not.toContain('w24');
  });

  it('scales reasoning with the effort level', () => {
    const low = simulatedAnswer(chat('effort', { reasoning_effort: 'low' })).reasoningContent!;
    const max = simulatedAnswer(chat('effort', { reasoning_effort: 'max' })).reasoningContent!;
    expect(tokenize(max).length).toBeGreaterThan(tokenize(low).length);
  });

  it('ignores empty stop strings and lets a stop cut win over max_tokens', () => {
    expect(simulatedAnswer(chat('x', { stop: [''] })).content.length).toBeGreaterThan(20);
    expect(simulatedAnswer(chat('x', { stop: ['answer'], max_tokens: 10 })).content).toBe('Simulated deepseek-flash ');
  });

  it('treats a body with prompt and no messages as FIM', () => {
    const fim = simulatedAnswer({ model: 'deepseek-flash', prompt: 'let x =', suffix: ';' });
    expect(fim.content).toMatch(/^simulated deepseek-flash fill-in [0-9a-f]{8} after "let x =" before ";"\.$/);
    expect(fim.reasoningContent).toBeNull();
  });

  it('throws for a body the simulator would reject', () => {
    expect(() => simulatedAnswer({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).toThrow('Model Not Exist');
    expect(() => simulatedAnswer({ model: 'deepseek-flash' })).toThrow(/messages/);
  });
});
