import { startGateway } from '../src/app';
import { testConfig } from '../src/config';
import { silentLogger } from '../src/telemetry/logger';

// Any attempt to load the simulator fails loudly: the production code path must not load it.
jest.mock('../src/simulator', () => {
  throw new Error('the simulator module was loaded');
});

describe('the composition root', () => {
  it('never loads the simulator when a DeepSeek key is configured (production)', async () => {
    const gateway = await startGateway(testConfig({ NODE_ENV: 'production', AUTH_MODE: 'none', DEEPSEEK_API_KEY: 'sk-production-key-0000', WARMUP_OPERATIONS: '0' }), silentLogger());
    try {
      expect(gateway.simulator).toBeUndefined();
      expect(gateway.services.config.deepseek.mode).toBe('real');
    } finally {
      await gateway.close();
    }
  });

  it('loads it only when it is used: without a key (the control for the case above)', async () => {
    await expect(startGateway(testConfig(), silentLogger())).rejects.toThrow('the simulator module was loaded');
  });
});
