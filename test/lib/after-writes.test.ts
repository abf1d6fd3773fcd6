import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterRequestsWritten } from '../../src/lib/after-writes';

describe('afterRequestsWritten', () => {
  let server: Server;
  let pool: Pool;
  const written: string[] = [];
  const onSendHeaders = (message: unknown): void => {
    written.push((message as { request: { path: string } }).request.path);
  };

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
    subscribe('undici:client:sendHeaders', onSendHeaders);
  });

  afterAll(async () => {
    unsubscribe('undici:client:sendHeaders', onSendHeaders);
    await pool.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('runs after undici has written a request on an idle keep-alive socket, even when queued before it', async () => {
    // A first request opens the connection, which is then idle and kept alive.
    await (await pool.request({ method: 'GET', path: '/first' })).body.text();
    written.length = 0;
    const seen: string[][] = [];
    // Queued first, as a subscription's set-up would be, a few microtasks before the request.
    const done = new Promise<void>((resolve) =>
      afterRequestsWritten(() => {
        seen.push([...written]);
        resolve();
      }),
    );
    let response: Promise<unknown> | undefined;
    void Promise.resolve().then(() => {
      response = pool.request({ method: 'GET', path: '/second' });
    });
    // One check phase is not enough: the request is still unwritten then.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(written).toEqual([]);
    await done;
    expect(seen).toEqual([['/second']]);
    await ((await response) as { body: { text(): Promise<string> } }).body.text();
  });
});
