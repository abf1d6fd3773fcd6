import { mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferedDestination, createLogger } from '../../src/telemetry/logger';

describe('bufferedDestination (the log lines on stdout)', () => {
  let dir: string;
  let file: string;
  let destination: ReturnType<typeof bufferedDestination>;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'buffered-destination-'));
    file = join(dir, 'out.log');
    // The destination owns the descriptor: `end` closes it.
    destination = bufferedDestination(openSync(file, 'w'));
  });

  afterEach(async () => {
    await destination.end();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Waits, one event-loop turn at a time, until the file holds `bytes` bytes (at most 10,000 turns). */
  async function fileReaches(bytes: number): Promise<void> {
    for (let turn = 0; turn < 10_000 && statSync(file).size < bytes; turn += 1) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('holds short lines until flushed, then writes them byte for byte, multi-byte characters included', () => {
    const lines = ['{"msg":"plain"}\n', '{"msg":"café"}\n', '{"msg":"🙂 x"}\n'];
    for (const line of lines) destination.write(line);
    expect(readFileSync(file, 'utf8')).toBe('');
    destination.flushSync();
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
  });

  it('writes on its own once 4 KiB have gathered, in order', async () => {
    const lines = Array.from({ length: 60 }, (_, index) => `{"n":${index},"msg":"${'é'.repeat(40)}"}\n`);
    for (const line of lines) destination.write(line);
    const expected = lines.join('');
    const bytes = Buffer.byteLength(expected);
    expect(bytes).toBeGreaterThan(4096);
    // No flush: the destination writes what it has gathered by itself.
    await fileReaches(4096);
    expect(statSync(file).size).toBeGreaterThanOrEqual(4096);
    const written = readFileSync(file, 'utf8');
    // What is written is a prefix of the lines, whole characters and in order.
    expect(expected.startsWith(written)).toBe(true);
    // Everything is there after a flush (nothing lost, nothing twice).
    destination.flushSync();
    await fileReaches(bytes);
    expect(readFileSync(file, 'utf8')).toBe(expected);
  });

  it('carries a logger made by createLogger, access lines and redaction included', () => {
    const logger = createLogger('info', destination);
    logger.info({ apiKey: 'sk-secret-1234', operation: 'x' }, 'hello');
    destination.flushSync();
    const line = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'info', msg: 'hello', operation: 'x', apiKey: '[redacted]' });
  });
});
