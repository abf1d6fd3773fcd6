import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../scripts/token';
import { createAuthenticator } from '../../src/auth';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/telemetry/logger';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let cwd: string;
beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'token-script-'));
});
afterEach(() => {
  rmSync(cwd, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  const code = await main(argv, { cwd, stdout: (text) => (out.stdout += text), stderr: (text) => (out.stderr += text) });
  return { code, ...out };
}

describe('npm run token', () => {
  it('mints a token the gateway accepts with the settings it prints', async () => {
    const { code, stdout, stderr } = await run('--scope', 'completions:read completions:stream', '--tenant', 'acme', '--sub', 'dev-1', '--ttl', '600');
    expect(code).toBe(0);
    expect(stderr).toContain('AUTH_MODE=jwt AUTH_SECRET_FILE=.dev/auth-secret AUTH_ISSUER=urn:deepseek-gateway:dev AUTH_AUDIENCE=deepseek-gateway');
    expect(stderr).toContain('Authorization: Bearer');
    const token = stdout.trim();
    expect(stdout).toBe(`${token}\n`);

    // The gateway's own config path: the variables printed, the secret file read as the gateway reads it.
    const config = loadConfig(
      { AUTH_MODE: 'jwt', AUTH_SECRET_FILE: join(cwd, '.dev/auth-secret'), AUTH_ISSUER: 'urn:deepseek-gateway:dev', AUTH_AUDIENCE: 'deepseek-gateway' },
      { dotenvPath: false },
    );
    const caller = await createAuthenticator(config.auth, { logger: silentLogger() }).authenticate({ authorization: `Bearer ${token}`, address: '127.0.0.1' });
    expect(caller).toMatchObject({ kind: 'token', subject: 'dev-1', tenant: 'acme' });
    expect([...caller.scopes]).toEqual(['completions:read', 'completions:stream']);
    expect(caller.expiresAt! - Date.now()).toBeLessThanOrEqual(600_000);
  });

  it('creates the secret once, mode 0600, and reuses it', async () => {
    expect((await run('--scope', 'completions:read')).stderr).toContain('Created .dev/auth-secret');
    const path = join(cwd, '.dev/auth-secret');
    const secret = readFileSync(path, 'utf8');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Buffer.from(secret.trim(), 'base64url')).toHaveLength(48);
    const again = await run('--scope', 'completions:read');
    expect(again.stderr).not.toContain('Created');
    expect(readFileSync(path, 'utf8')).toBe(secret);
  });

  it.each([
    [[], '--scope is required'],
    [['--scope', 'completions:reed'], 'unknown scope "completions:reed"'],
    [['--scope', ' '], '--scope names no scope'],
    [['--scope', 'completions:read', '--tenant', 'acme corp'], '--tenant must be'],
    [['--scope', 'completions:read', '--sub', ''], '--sub must be'],
    [['--scope', 'completions:read', '--ttl', '0'], '--ttl must be'],
    [['--scope', 'completions:read', '--ttl', '1h'], '--ttl must be'],
    [['--scope', 'completions:read', '--bogus'], "Unknown option '--bogus'"],
    [['--scope'], "Option '--scope <value>' argument missing"],
  ])('refuses %j with a message and exit 2, minting nothing', async (argv, message) => {
    const { code, stdout, stderr } = await run(...argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
    expect(stderr).toContain('usage: npm run -s token');
  });
});
