import { PassThrough, Readable } from 'node:stream';
import { readBody } from '../../src/lib/read-body';

describe('readBody', () => {
  it('collects buffer and string chunks in order', async () => {
    const bytes = await readBody(Readable.from([Buffer.from('ab'), 'cd', Buffer.from('é')]), 100, { cut: true });
    expect(bytes.toString('utf8')).toBe('abcdé');
  });

  it('answers an empty buffer for an empty body, and for one that already ended', async () => {
    await expect(readBody(Readable.from([]), 10, { cut: true })).resolves.toHaveLength(0);
    const ended = Readable.from([]);
    ended.resume();
    await new Promise((resolve) => ended.once('end', resolve));
    await expect(readBody(ended, 10, { cut: true })).resolves.toHaveLength(0);
  });

  it('cuts at the limit and destroys the rest of the body', async () => {
    const body = new PassThrough();
    const read = readBody(body, 5, { cut: true });
    body.write('abc');
    body.write('defgh');
    const bytes = await read;
    expect(bytes.toString('utf8')).toBe('abcde');
    expect(body.destroyed).toBe(true);
  });

  it('fails past the limit with the given error, destroying the body, and accepts exactly the limit', async () => {
    await expect(readBody(Readable.from(['abcde']), 5, { fail: () => new Error('too large') })).resolves.toHaveLength(5);
    const body = new PassThrough();
    const read = readBody(body, 5, { fail: () => new Error('too large') });
    body.write('abc');
    body.write('def');
    await expect(read).rejects.toThrow('too large');
    expect(body.destroyed).toBe(true);
  });

  it("rejects with the body's error", async () => {
    const body = new PassThrough();
    const read = readBody(body, 100, { cut: true });
    body.write('abc');
    body.destroy(new Error('socket hang up'));
    await expect(read).rejects.toThrow('socket hang up');
  });

  it('rejects when the body is destroyed before its end, or was already', async () => {
    const body = new PassThrough();
    const read = readBody(body, 100, { cut: true });
    body.write('abc');
    body.destroy();
    await expect(read).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    const gone = new PassThrough();
    gone.destroy();
    await expect(readBody(gone, 100, { cut: true })).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });
});
