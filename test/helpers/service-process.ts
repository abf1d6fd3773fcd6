import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/**
 * How long a child service may take to say it listens: tsx compiles it, then its warm-up
 * runs (WARMUP_OPERATIONS, 6-7 s on an idle machine), while the rest of the suite runs on
 * the same 2 cores. Tests that start one run under PROCESS_TEST_TIMEOUT_MS.
 */
export const START_TIMEOUT_MS = 40_000;
export const PROCESS_TEST_TIMEOUT_MS = 90_000;

/** Starts the service as a child process (`npm start`, or node with tsx), in a clean environment plus `env`. */
export function startService(env: Record<string, string>, via: 'npm' | 'node' = 'node'): ChildProcessWithoutNullStreams {
  // `npm start` runs the script through sh; `exec` in the script makes node replace sh, so a
  // signal npm forwards reaches node itself. 'node' runs the same command without npm.
  const [command, args] = via === 'npm' ? ['npm', ['start', '--silent']] : [process.execPath, ['--import', 'tsx', 'src/main.ts']];
  return spawn(command, args, {
    cwd: ROOT,
    // A clean environment: only what the test gives, plus PATH (npm, tsx) and HOME (npm).
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'development', HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', ...env },
  });
}

/** Resolves with the service's GraphQL URL once it logs 'gateway listening' (and every line so far); rejects if it exits first. */
export async function waitForUrl(child: ChildProcessWithoutNullStreams): Promise<{ url: string; lines: string[] }> {
  const lines: string[] = [];
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${lines.join('\n')}`)), START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'gateway listening' && entry.url) {
            clearTimeout(timer);
            resolve({ url: entry.url, lines });
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`service exited with ${code}:\n${lines.join('\n')}`)));
  });
}
