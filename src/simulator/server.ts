import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Counters } from './counters';
import type { Exchange } from './exchange';
import { Faults } from './faults';
import { createRequestListener } from './handler';
import { resolveOptions, type ResolvedOptions } from './options';
import type { RecordedRequest, Simulator, SimulatorOptions } from './types';
import { PromptCache } from './usage';

function urlFor(address: AddressInfo): string {
  // A wildcard bind is reachable on loopback; that is the URL a local client needs.
  if (address.address === '0.0.0.0') return `http://127.0.0.1:${address.port}`;
  if (address.address === '::') return `http://[::1]:${address.port}`;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

class SimulatorServer implements Simulator {
  readonly faults = new Faults();
  readonly counters = new Counters();
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly exchanges = new Set<Exchange>();
  private baseUrl = '';
  private closing: Promise<void> | undefined;

  constructor(private options: ResolvedOptions) {
    this.server = createServer(
      createRequestListener({
        counters: this.counters,
        faults: this.faults,
        promptCache: new PromptCache(),
        requests: this.requests,
        exchanges: this.exchanges,
        options: () => this.options,
      }),
    );
    this.server.on('connection', (socket: Socket) => {
      this.counters.connectionOpened();
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        this.baseUrl = urlFor(this.server.address() as AddressInfo);
        resolve();
      });
    });
  }

  setOptions(options: Partial<SimulatorOptions>): void {
    // host and port only matter before listen; later requests see the rest.
    this.options = resolveOptions(options, this.options);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const open = [...this.exchanges];
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      // Hung and keep-alive-only requests would hold close() forever otherwise.
      for (const exchange of open) exchange.abort();
      for (const socket of this.sockets) socket.destroy();
      await closed;
      await Promise.all(open.map((exchange) => exchange.closed));
    })();
    return this.closing;
  }
}

/** Starts a DeepSeek-compatible HTTP server; resolves once it listens (`url` is then set). */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = new SimulatorServer(resolveOptions(options));
  await simulator.listen();
  return simulator;
}
