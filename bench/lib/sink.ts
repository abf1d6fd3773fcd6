import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A local OTLP/HTTP sink: answers 200 to every POST and counts requests and bytes per path. */
export class OtlpSink {
  readonly byPath: Record<string, { requests: number; bytes: number }> = {};
  private readonly server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        const path = (req.url ?? '/').split('?')[0];
        const entry = (this.byPath[path] ??= { requests: 0, bytes: 0 });
        entry.requests += 1;
        entry.bytes += bytes;
        const json = !String(req.headers['content-type'] ?? '').includes('protobuf');
        // An empty ExportTraceServiceResponse: `{}` in JSON, zero bytes in protobuf.
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : undefined);
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  get traces(): { requests: number; bytes: number } {
    return this.byPath['/v1/traces'] ?? { requests: 0, bytes: 0 };
  }

  snapshot(): Record<string, { requests: number; bytes: number }> {
    return JSON.parse(JSON.stringify(this.byPath)) as Record<string, { requests: number; bytes: number }>;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
