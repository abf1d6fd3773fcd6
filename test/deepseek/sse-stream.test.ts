import { Readable } from 'node:stream';
import { readSseData } from '../../src/deepseek/sse-stream';

async function all(chunks: Array<string | Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const data of readSseData(Readable.from(chunks))) out.push(data);
  return out;
}

describe('SSE reader', () => {
  it('yields data payloads and skips keep-alive comments', async () => {
    await expect(all([': keep-alive\n\n', 'data: {"a":1}\n\n', ': keep-alive\n\ndata: [DONE]\n\n'])).resolves.toEqual([
      '{"a":1}',
      '[DONE]',
    ]);
  });

  it('joins events split across chunks, including multi-byte characters', async () => {
    const bytes = Buffer.from('data: {"t":"héllo 👋"}\n\n', 'utf8');
    const chunks = [bytes.subarray(0, 15), bytes.subarray(15, 19), bytes.subarray(19)];
    await expect(all(chunks)).resolves.toEqual(['{"t":"héllo 👋"}']);
  });

  it('accepts CRLF line endings', async () => {
    await expect(all(['data: x\r\n\r\n'])).resolves.toEqual(['x']);
  });

  it('drops an unterminated event at EOF', async () => {
    await expect(all(['data: {"a":1}\n\ndata: {"b"'])).resolves.toEqual(['{"a":1}']);
  });
});
