import { Readable } from 'node:stream';
import { deliver } from '../../src/transport/handler';
import { okResponse, openBody, rejectionOf, settle, streamHandler, textHandler } from './fakes';

describe('the handler contract (deliver)', () => {
  it('ends a non-stream exchange before it returns, dropping what the handler left unread', async () => {
    const body = Readable.from(['first', 'second']);
    const ends: Array<Error | undefined> = [];
    let endedBeforeReturn = false;

    const value = await deliver({ stream: false }, { onResponse: async () => 'read nothing', onResponseEnd: (error) => ends.push(error) }, okResponse(body), {
      onEnd: () => (endedBeforeReturn = true),
    });

    expect(value).toBe('read nothing');
    expect(endedBeforeReturn).toBe(true);
    expect(ends).toEqual([undefined]);
    expect(body.destroyed).toBe(true);
  });

  it('destroys the body and rethrows when the handler fails, without reporting an end', async () => {
    const body = openBody();
    const failure = new Error('unreadable');
    const ends: Array<Error | undefined> = [];

    const error = await rejectionOf(
      deliver({ stream: false }, { onResponse: () => Promise.reject(failure), onResponseEnd: (e) => ends.push(e) }, okResponse(body)),
    );

    expect(error).toBe(failure);
    expect(body.destroyed).toBe(true);
    expect(ends).toEqual([]);
  });

  it("ends a stream's exchange when its body closes, not when the handler returns", async () => {
    const body = openBody();
    const handler = streamHandler();
    const response = await deliver({ stream: true }, handler, okResponse(body));
    await settle();
    expect(handler.ends).toEqual([]);

    body.push('data: x\n\n');
    body.push(null);
    for await (const chunk of response.body) expect(String(chunk)).toBe('data: x\n\n');
    await settle();

    expect(handler.ends).toEqual([undefined]);
  });

  it('counts a reader that leaves early or closes the body as its choice, not a failure', async () => {
    for (const leave of [(body: Readable) => body.destroy(), async (body: Readable) => {
      for await (const _chunk of body) break;
    }]) {
      const body = openBody();
      body.push('data: x\n\n');
      const handler = streamHandler();
      await deliver({ stream: true }, handler, okResponse(body));
      await leave(body);
      await settle();
      expect(handler.ends).toEqual([undefined]);
    }
  });

  it('reports what cut a stream: the error it was destroyed with, or the abort of its signal', async () => {
    const broken = openBody();
    const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    const first = streamHandler();
    await deliver({ stream: true }, first, okResponse(broken));
    broken.on('error', () => undefined).destroy(socket);

    const cut = openBody();
    const controller = new AbortController();
    const second = streamHandler();
    await deliver({ stream: true }, second, okResponse(cut), { signal: controller.signal });
    const reason = new Error('stream lifetime');
    controller.abort(reason);
    cut.destroy();
    await settle();

    expect(first.ends).toEqual([socket]);
    expect(second.ends).toEqual([reason]);
  });

  it('keeps the value of a handler that read the whole body', async () => {
    await expect(deliver({ stream: false }, textHandler(), okResponse())).resolves.toBe('{"ok":true}');
  });
});
