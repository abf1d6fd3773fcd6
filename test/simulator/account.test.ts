import { DEFAULT_SIMULATOR_MODELS } from '../../src/simulator';
import { TRACE_ID, useSimulator } from './helpers';

describe('simulator GET /models and /user/balance', () => {
  const { call } = useSimulator({ exhaustedKeys: ['sk-empty-wallet-0000'] });

  it('lists both models with the 2026-11 metadata', async () => {
    for (const path of ['/models', '/v1/models']) {
      const res = await call(path);
      expect(res.status).toBe(200);
      expect(res.headers['x-ds-trace-id']).toMatch(TRACE_ID);
      const json = JSON.parse(res.text) as { object: string; data: Array<Record<string, unknown>> };
      expect(json.object).toBe('list');
      expect(json.data.map((m) => m.id)).toEqual(['deepseek-flash', 'deepseek-v4-pro']);
      expect(json.data).toEqual(DEFAULT_SIMULATOR_MODELS);
    }
    const [flash, pro] = DEFAULT_SIMULATOR_MODELS;
    expect(flash).toEqual({
      id: 'deepseek-flash',
      object: 'model',
      owned_by: 'deepseek',
      name: 'DeepSeek-V4.1-Flash',
      context_window: 1048576,
      max_output_tokens: 393216,
      input_modalities: ['text', 'image'],
      output_modalities: ['text'],
      effort: { supported_levels: ['low', 'high', 'max'], default_level: 'high' },
      api_capabilities: { anthropic_messages: { system_prompt_update: 'in-history' } },
    });
    expect(pro.input_modalities).toEqual(['text']);
  });

  it('reports the balance with decimal strings', async () => {
    const json = JSON.parse((await call('/user/balance')).text) as unknown;
    expect(json).toEqual({
      is_available: true,
      balance_infos: [{ currency: 'CNY', total_balance: '110.00', granted_balance: '10.00', topped_up_balance: '100.00' }],
    });
  });

  it('reports an exhausted key as unavailable instead of refusing it', async () => {
    const res = await call('/user/balance', { key: 'sk-empty-wallet-0000' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ is_available: false, balance_infos: [{ total_balance: '0.00' }] });
  });
});
