import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

export interface HeldUpstream {
  /** Base URL to give the gateway as DEEPSEEK_BASE_URL. */
  readonly url: string;
  /** Requests received so far (held or passed on). */
  readonly received: number;
  /** Passes every held request on, and every later one at once. */
  release(): void;
  close(): Promise<void>;
}

/** Hop-by-hop and framing headers: each side of the stand-in sets its own. */
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function forwardable(headers: IncomingHttpHeaders): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !NOT_FORWARDED.has(name)) kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}

/**
 * An HTTP stand-in in front of `target` (the simulator) that holds every request until
 * `release()`, then passes it on and answers with the target's whole response. A test that
 * needs calls kept in flight until it has seen something (all requests arrived, say) waits
 * for that, then releases: no latency chosen to be long enough on a fast machine.
 * Answers are buffered, so it is for JSON answers, not streams.
 */
export async function startHeldUpstream(target: string): Promise<HeldUpstream> {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let received = 0;
  const server = createServer((req, res) => {
    received += 1;
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      void (async () => {
        try {
          await gate;
          const answer = await request(`${target}${req.url ?? '/'}`, {
            method: req.method as 'POST',
            headers: forwardable(req.headers),
            body: body.length > 0 ? Buffer.concat(body) : undefined,
          });
          const payload = Buffer.from(await answer.body.arrayBuffer());
          const headers = forwardable(answer.headers);
          res.writeHead(answer.statusCode, { ...headers, 'content-length': String(payload.length) });
          res.end(payload);
        } catch {
          res.destroy();
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get received() {
      return received;
    },
    release: () => open(),
    close: async () => {
      open();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
