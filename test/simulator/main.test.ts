import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

describe('npm run simulator (src/simulator/main.ts)', () => {
  it('logs its URL, answers with any key, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/simulator/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, SIMULATOR_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      const url = await new Promise<string>((done, fail) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
          if (match) done(match[1]);
        });
        void exited.then((code) => fail(new Error(`simulator exited early with ${code}`)));
      });
      const res = await fetch(`${url}/models`, { headers: { authorization: 'Bearer any-key-at-all' } });
      expect(res.status).toBe(200);
      await res.text();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
