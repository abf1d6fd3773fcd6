import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { abortReason, LightAbortController, type AbortSignalLike } from '../../src/lib/abort';

/**
 * `LightAbortController` stands in for `AbortController` on every request and upstream call,
 * so each case runs against both: whatever the gateway or undici may observe of an abort
 * must be the same.
 */
interface Controller {
  readonly signal: AbortSignalLike;
  abort(reason?: unknown): void;
}

const controllers: Array<[string, () => Controller]> = [
  ['AbortController', () => new AbortController()],
  ['LightAbortController', () => new LightAbortController()],
];

describe.each(controllers)('%s', (_name, make) => {
  it('is aborted, with its reason, before any listener runs; a second abort changes nothing', () => {
    const controller = make();
    const seen: Array<[boolean, unknown]> = [];
    controller.signal.addEventListener('abort', () => seen.push([controller.signal.aborted, controller.signal.reason]));
    const reason = new Error('first');

    expect(controller.signal.aborted).toBe(false);
    controller.abort(reason);
    controller.abort(new Error('second'));

    expect(seen).toEqual([[true, reason]]);
    expect(controller.signal.reason).toBe(reason);
  });

  it('gives an AbortError DOMException as the reason when none is given', () => {
    const controller = make();
    controller.abort();

    expect(controller.signal.reason).toBeInstanceOf(DOMException);
    expect(controller.signal.reason).toMatchObject({ name: 'AbortError', message: 'This operation was aborted' });
    expect(abortReason(controller.signal)).toMatchObject({ name: 'AbortError' });
  });

  it('runs each listener once, in the order added, and the same listener only once', () => {
    const controller = make();
    const calls: string[] = [];
    const first = (): number => calls.push('first');
    controller.signal.addEventListener('abort', first);
    controller.signal.addEventListener('abort', () => calls.push('second'), { once: true });
    controller.signal.addEventListener('abort', first);

    controller.abort();
    controller.abort();

    expect(calls).toEqual(['first', 'second']);
  });

  it('does not call a listener removed before the abort, nor one an earlier listener removed', () => {
    const controller = make();
    const calls: string[] = [];
    const removedBefore = (): number => calls.push('removed before');
    const removedDuring = (): number => calls.push('removed during');
    controller.signal.addEventListener('abort', removedBefore);
    controller.signal.addEventListener('abort', () => {
      calls.push('remover');
      controller.signal.removeEventListener('abort', removedDuring);
    });
    controller.signal.addEventListener('abort', removedDuring);
    controller.signal.addEventListener('abort', () => calls.push('last'));
    controller.signal.removeEventListener('abort', removedBefore);

    controller.abort();

    expect(calls).toEqual(['remover', 'last']);
  });

  it('never runs a listener added after the abort', () => {
    const controller = make();
    controller.abort();
    const late = jest.fn();
    controller.signal.addEventListener('abort', late);
    controller.abort();

    expect(late).not.toHaveBeenCalled();
    expect(controller.signal.aborted).toBe(true);
  });

  it('aborts an undici request with its reason, and leaves no listener once the request is over', async () => {
    const server: Server = createServer((request, response) => {
      // Answers a request to /fast at once; any other is left hanging until it is aborted.
      if (request.url === '/fast') response.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const finished = make();
      const adds = jest.spyOn(finished.signal, 'addEventListener');
      const removes = jest.spyOn(finished.signal, 'removeEventListener');
      const fast = await pool.request({ method: 'GET', path: '/fast', signal: finished.signal });
      expect(await fast.body.text()).toBe('ok');
      // undici removes its listener when the body closes, a tick after it is read.
      if (!fast.body.closed) await once(fast.body, 'close');
      expect(removes.mock.calls.map(([, listener]) => listener)).toEqual(adds.mock.calls.map(([, listener]) => listener));

      const controller = make();
      const reason = new Error('the caller left');
      const hung = pool.request({ method: 'GET', path: '/hang', signal: controller.signal });
      setImmediate(() => controller.abort(reason));
      await expect(hung).rejects.toBe(reason);
    } finally {
      await pool.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('LightAbortController', () => {
  it('runs every listener even when one throws, and throws that error on the next tick', () => {
    const controller = new LightAbortController();
    const failure = new Error('listener failed');
    const deferred: Array<() => void> = [];
    const nextTick = jest.spyOn(process, 'nextTick').mockImplementation(((callback: () => void) => {
      deferred.push(callback);
    }) as typeof process.nextTick);
    const after = jest.fn();
    try {
      controller.signal.addEventListener('abort', () => {
        throw failure;
      });
      controller.signal.addEventListener('abort', after);
      controller.abort();
    } finally {
      nextTick.mockRestore();
    }

    expect(after).toHaveBeenCalledTimes(1);
    expect(deferred).toHaveLength(1);
    expect(() => deferred[0]!()).toThrow(failure);
  });

  it('hands out itself as its signal, without listeners once aborted', () => {
    const controller = new LightAbortController();
    const listener = jest.fn();
    controller.signal.addEventListener('abort', listener);
    controller.abort();
    controller.signal.removeEventListener('abort', listener);

    expect(controller.signal).toBe(controller);
    expect(listener).toHaveBeenCalledTimes(1);
  });
});
