import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, release } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './proc';

/** Writes `bench/results/<prefix>-<timestamp>.json` and returns its path (relative to the repo). */
export function writeResults(prefix: string, data: Record<string, unknown>): string {
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${prefix}-${stamp}.json`);
  const machine = { node: process.version, os: `${process.platform} ${release()} ${arch()}`, cpus: cpus().length, cpuModel: cpus()[0]?.model };
  writeFileSync(file, `${JSON.stringify({ machine, ...data }, null, 2)}\n`);
  return file.slice(REPO_ROOT.length + 1);
}
