import { WarmUpGate } from '../../src/http/warmup';

describe('the warm-up gate', () => {
  it('accepts only its own random secret, and nothing once closed', () => {
    const gate = new WarmUpGate();
    expect(gate.secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(new WarmUpGate().secret).not.toBe(gate.secret);
    expect(gate.accepts(gate.secret)).toBe(true);
    expect(gate.accepts(undefined)).toBe(false);
    expect(gate.accepts('')).toBe(false);
    expect(gate.accepts([gate.secret])).toBe(false);
    gate.close();
    expect(gate.accepts(gate.secret)).toBe(false);
  });
});
