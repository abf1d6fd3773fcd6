import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

/** How the JWKS test server answers. */
export type JwksBehaviour = 'ok' | 'hang' | 'status503' | 'junk-json' | 'html' | 'empty-keys' | 'secret-key' | 'huge-chunked' | 'huge-declared';

/** A JWKS endpoint on 127.0.0.1:0 whose keys and behaviour a test changes at will. */
export class JwksServer {
  keys: JWK[] = [];
  behaviour: JwksBehaviour = 'ok';
  requests = 0;
  readonly #server: Server;
  readonly #waiting: Array<() => boolean> = [];

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(keys: JWK[] = []): Promise<JwksServer> {
    const holder: { self?: JwksServer } = {};
    const server = createServer((request, response) => holder.self!.handle(request, response));
    const self = new JwksServer(server);
    holder.self = self;
    self.keys = keys;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  /** Resolves when the server has received `count` requests in all. */
  receivedRequests(count: number): Promise<void> {
    if (this.requests >= count) return Promise.resolve();
    return new Promise((resolve) =>
      this.#waiting.push(() => {
        if (this.requests < count) return false;
        resolve();
        return true;
      }),
    );
  }

  private handle(_request: IncomingMessage, response: ServerResponse): void {
    this.requests += 1;
    for (const check of this.#waiting.splice(0)) if (!check()) this.#waiting.push(check);
    switch (this.behaviour) {
      case 'ok':
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
        return;
      case 'hang':
        return; // headers never come
      case 'status503':
        response.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable');
        return;
      case 'junk-json':
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"issuer":"nope"}');
        return;
      case 'html':
        response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Sign in</title><p>Please log in');
        return;
      case 'empty-keys':
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
        return;
      case 'secret-key':
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"a"}]}');
        return;
      case 'huge-chunked': {
        // 2 MiB of a syntactically fine JWKS, streamed without a length.
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write(`{"keys":${JSON.stringify(this.keys)},"padding":"`);
        const block = 'x'.repeat(64 * 1024);
        for (let i = 0; i < 32; i += 1) response.write(block);
        response.end('"}');
        return;
      }
      case 'huge-declared':
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 * 1024 * 1024) });
        response.write('{"keys":[');
        return; // the rest never needs to come
    }
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
