import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';

const load = (env: Record<string, string>) => loadConfig(env, { dotenvPath: false });

function problemsOf(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('builds defaults: simulator mode without a key, port 4000, deepseek-flash, memory cache', () => {
    const config = load({});
    expect(config.deepseek.mode).toBe('simulator');
    expect(config.server.port).toBe(4000);
    expect(config.deepseek.model).toBe('deepseek-flash');
    expect(config.cache.redisUrl).toBeUndefined();
    expect(config.deepseek.maxRetries).toBe(2);
  });

  it('takes keys from DEEPSEEK_API_KEY, DEEPSEEK_API_KEYS and DEEPSEEK_API_KEY_FILE, deduplicated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-file-key-0001\nsk-one-key-00001\n');
    const config = load({
      DEEPSEEK_API_KEY: 'sk-one-key-00001',
      DEEPSEEK_API_KEYS: 'sk-two-key-00002, sk-three-key-0003',
      DEEPSEEK_API_KEY_FILE: file,
    });
    expect(config.deepseek.mode).toBe('real');
    expect(config.deepseek.apiKeys).toEqual(['sk-one-key-00001', 'sk-two-key-00002', 'sk-three-key-0003', 'sk-file-key-0001']);
  });

  it('reports every invalid variable at once, naming it and its accepted form', () => {
    const message = problemsOf({ PORT: '99999', LOG_LEVEL: 'loud', DEEPSEEK_BASE_URL: 'ftp://x', BATCH_WINDOW_MS: 'soon' });
    expect(message).toMatch(/PORT: expected an integer port from 0 to 65535/);
    expect(message).toMatch(/LOG_LEVEL: expected one of fatal, error/);
    expect(message).toMatch(/DEEPSEEK_BASE_URL: expected an http\(s\) URL/);
    expect(message).toMatch(/BATCH_WINDOW_MS: expected milliseconds/);
  });

  it.each([
    [{ DEEPSEEK_TIMEOUT_MS: '-5' }, /DEEPSEEK_TIMEOUT_MS: expected milliseconds/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/],
  ])('refuses %p and names the variable', (env, message) => {
    expect(problemsOf(env)).toMatch(message);
  });

  it('refuses production until AUTH_MODE is set explicitly, and checks what AUTH_MODE=jwt needs', () => {
    expect(problemsOf({ NODE_ENV: 'production', DEEPSEEK_API_KEY: 'sk-production-key-0000' })).toMatch(/AUTH_MODE: required when NODE_ENV=production/);
    expect(load({ NODE_ENV: 'production', DEEPSEEK_API_KEY: 'sk-production-key-0000', AUTH_MODE: 'none' }).auth).toEqual({ mode: 'none' });
    const jwt = problemsOf({ AUTH_MODE: 'jwt' });
    expect(jwt).toMatch(/AUTH_JWKS_URL: with AUTH_MODE=jwt, set exactly one of/);
    expect(jwt).toMatch(/AUTH_ISSUER: required/);
    expect(jwt).toMatch(/AUTH_AUDIENCE: required/);
    const dir = mkdtempSync(join(tmpdir(), 'auth-'));
    writeFileSync(join(dir, 'short'), 'too-short');
    expect(problemsOf({ AUTH_MODE: 'jwt', AUTH_SECRET_FILE: join(dir, 'short'), AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' })).toMatch(
      /AUTH_SECRET_FILE: expected a shared secret of at least 32 bytes/,
    );
    expect(problemsOf({ AUTH_MODE: 'jwt', AUTH_SECRET_FILE: join(dir, 'short'), AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' })).not.toContain('too-short');
    writeFileSync(join(dir, 'secret'), 'x'.repeat(40));
    const config = load({ AUTH_MODE: 'jwt', AUTH_SECRET_FILE: join(dir, 'secret'), AUTH_ISSUER: 'https://issuer.example', AUTH_AUDIENCE: 'gateway' });
    expect(config.auth).toMatchObject({ mode: 'jwt', keys: { kind: 'secret' }, issuer: 'https://issuer.example', audience: 'gateway', scopesClaim: 'scope', tenantClaim: 'tenant' });
    // Tenants share nothing unless an operator says so.
    expect(config.cache.scope).toBe('tenant');
    expect(load({}).cache.scope).toBe('global');
  });

  it('builds the breaker settings: 50 % failed calls over 10 s with at least 20 calls, 15 s open', () => {
    expect(load({}).deepseek).toMatchObject({ breakerFailureRate: 0.5, breakerWindowMs: 10_000, breakerMinCalls: 20, breakerCooldownMs: 15_000 });
    expect(
      load({
        DEEPSEEK_BREAKER_FAILURE_RATE: '0.25',
        DEEPSEEK_BREAKER_WINDOW_MS: '30000',
        DEEPSEEK_BREAKER_MIN_CALLS: '50',
        DEEPSEEK_BREAKER_COOLDOWN_MS: '5000',
      }).deepseek,
    ).toMatchObject({ breakerFailureRate: 0.25, breakerWindowMs: 30_000, breakerMinCalls: 50, breakerCooldownMs: 5000 });
    expect(load({ DEEPSEEK_BREAKER_FAILURE_RATE: '1' }).deepseek.breakerFailureRate).toBe(1);
  });

  it('refuses bad breaker settings, naming each variable and its form', () => {
    for (const rate of ['0', '1.5', 'half', '-0.2']) {
      expect(problemsOf({ DEEPSEEK_BREAKER_FAILURE_RATE: rate })).toMatch(
        /DEEPSEEK_BREAKER_FAILURE_RATE: expected a number greater than 0 and at most 1/,
      );
    }
    const message = problemsOf({ DEEPSEEK_BREAKER_WINDOW_MS: '500', DEEPSEEK_BREAKER_MIN_CALLS: '0' });
    expect(message).toMatch(/DEEPSEEK_BREAKER_WINDOW_MS: expected milliseconds from 1000 to 3600000/);
    expect(message).toMatch(/DEEPSEEK_BREAKER_MIN_CALLS: expected an integer from 1 to 100000/);
  });

  it('refuses production without a key', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toMatch(/DEEPSEEK_API_KEY: required when NODE_ENV=production/);
  });

  it('names an unreadable key file and a malformed key without echoing the key', () => {
    const message = problemsOf({ DEEPSEEK_API_KEY_FILE: '/nonexistent/keys', DEEPSEEK_API_KEYS: 'short' });
    expect(message).toMatch(/DEEPSEEK_API_KEY_FILE: expected a readable file/);
    expect(message).toMatch(/DEEPSEEK_API_KEY: expected printable keys/);
    expect(message).not.toContain('short');
  });

  it('reads a .env file without overriding the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const path = join(dir, '.env');
    writeFileSync(path, 'PORT=5005\nDEEPSEEK_MODEL=deepseek-v4-pro\n');
    const config = loadConfig({ PORT: '6006' }, { dotenvPath: path });
    expect(config.server.port).toBe(6006);
    expect(config.deepseek.model).toBe('deepseek-v4-pro');
  });
});
