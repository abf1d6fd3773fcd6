import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export const GRAPHIQL_PATH = '/graphiql';

/** What a fresh editor shows (a browser keeps its last edits in localStorage). */
export const DEFAULT_GRAPHIQL_QUERY = `# Queries and mutations go over HTTP POST,
# subscriptions over graphql-ws on the same URL.
# The run button asks which operation to run;
# Ctrl-Space completes, Ctrl-Enter runs the one
# under the cursor.

query Completion {
  completion(
    input: { prompt: "Say hello in five words.", thinking: false }
  ) {
    id
    model
    content
    finishReason
    cached
    usage { promptTokens completionTokens totalTokens }
  }
}

subscription Stream {
  completionStream(
    input: { prompt: "Count from one to ten.", thinking: false }
  ) {
    index
    delta
    finishReason
    cached
  }
}
`;

export interface GraphiQLOptions {
  /** Where the page is served (default `/graphiql`); its assets live under `<path>/assets/`. */
  path?: string;
  /**
   * The GraphQL endpoint on this origin (`/graphql`): queries and mutations are POSTed there
   * as JSON, subscriptions use graphql-ws (graphql-transport-ws) on the same path.
   */
  endpoint: string;
  /** Default: {@link DEFAULT_GRAPHIQL_QUERY}. */
  defaultQuery?: string;
}

/** One file the page loads, read from an installed npm package (or built here) on first use. */
interface Asset {
  url: string;
  contentType: string;
  load: () => Buffer;
}

/** Versioned URLs never change content, so browsers may keep them for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Gzip pays off for the 1 MB GraphiQL bundle when the gateway is not on localhost. */
const GZIP_MIN_BYTES = 1024;

/**
 * GraphiQL from its npm package (graphiql 3 UMD on React 18 UMD builds), served from this
 * process so the explorer works with no internet, unlike Apollo Sandbox, which loads from
 * Apollo's CDN. Every script and stylesheet is same-origin and the page's CSP allows no
 * other. Register it outside production only: it relies on introspection, which production
 * turns off.
 *
 * Package files are located now (a missing package fails registration, not the first
 * request) and read into memory, and gzipped, once on first request (about 0.1 s of CPU for
 * the GraphiQL bundle).
 */
export function registerGraphiQL(app: FastifyInstance, options: GraphiQLOptions): void {
  const pagePath = normalisePath(options.path ?? GRAPHIQL_PATH);
  const assetsPath = `${pagePath}/assets`;
  const packaged = (pkg: string, file: string, contentType: string): Asset => {
    const { dir, version } = packageDir(pkg);
    const filePath = path.join(dir, file);
    return {
      url: `${assetsPath}/${pkg}@${version}/${path.basename(file)}`,
      contentType,
      load: () => readFileSync(filePath),
    };
  };
  const built = (name: string, ext: string, contentType: string, text: string): Asset => {
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
    return { url: `${assetsPath}/${name}.${hash}.${ext}`, contentType, load: () => Buffer.from(text) };
  };

  const JS = 'text/javascript; charset=utf-8';
  const CSS = 'text/css; charset=utf-8';
  // Order matters: GraphiQL's UMD reads the React and ReactDOM globals when it loads, and the
  // boot script needs all three. GraphiQL bundles its own graphql-ws client (5.x, same
  // protocol as the server's 6.x), so no graphql-ws script is needed.
  const scripts = [
    packaged('react', 'umd/react.production.min.js', JS),
    packaged('react-dom', 'umd/react-dom.production.min.js', JS),
    packaged('graphiql', 'graphiql.min.js', JS),
    built('boot', 'js', JS, bootScript({ endpoint: options.endpoint, defaultQuery: options.defaultQuery ?? DEFAULT_GRAPHIQL_QUERY })),
  ];
  const styles = [packaged('graphiql', 'graphiql.min.css', CSS), built('page', 'css', CSS, PAGE_CSS)];

  const html = pageHtml(scripts, styles);
  app.get(pagePath, async (request, reply) =>
    reply
      .header('content-security-policy', contentSecurityPolicy(request))
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(html),
  );

  for (const asset of [...scripts, ...styles]) {
    const body = lazy(asset.load);
    const gzipped = lazy(() => gzipSync(body(), { level: 9 }));
    app.get(asset.url, async (request, reply) => {
      reply
        .header('cache-control', IMMUTABLE)
        .header('x-content-type-options', 'nosniff')
        .header('vary', 'accept-encoding')
        .type(asset.contentType);
      if (body().length >= GZIP_MIN_BYTES && acceptsGzip(request)) {
        return reply.header('content-encoding', 'gzip').send(gzipped());
      }
      return reply.send(body());
    });
  }
}

/**
 * Self only: scripts, styles and fetches from this origin, plus WebSockets to this host
 * (CSP 'self' covers ws:/wss: in CSP3 browsers; the explicit sources help older ones).
 * Fonts are data: URIs inside GraphiQL's CSS. No inline script or style is allowed: the one
 * inline <style> GraphiQL tries to add (react-remove-scroll's body scroll lock while a menu
 * or dialog is open) is refused with a console message and changes nothing, since the page
 * never scrolls; allowing it would take 'unsafe-inline' (its text varies with the
 * scrollbar width, so no stable hash).
 */
function contentSecurityPolicy(request: FastifyRequest): string {
  const host = request.headers.host;
  // Only a plain host[:port] goes into the header: nothing the client sends can add a directive.
  const sockets = host && /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function pageHtml(scripts: Asset[], styles: Asset[]): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>GraphiQL</title>',
    // No favicon: without this the browser asks for /favicon.ico and logs the 404.
    '<link rel="icon" href="data:,">',
    ...styles.map((s) => `<link rel="stylesheet" href="${s.url}">`),
    '</head>',
    '<body>',
    '<div id="graphiql"><noscript>GraphiQL needs JavaScript.</noscript></div>',
    ...scripts.map((s) => `<script src="${s.url}"></script>`),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const PAGE_CSS = 'html, body { height: 100%; margin: 0; }\n#graphiql { height: 100vh; }\n';

/**
 * Renders GraphiQL with a fetcher that POSTs queries and mutations (content-type
 * application/json, which passes Apollo's CSRF prevention) and runs subscriptions over
 * graphql-ws. URLs come from `location`, so the page works behind any host, port or TLS.
 */
function bootScript(config: { endpoint: string; defaultQuery: string }): string {
  return `(function () {
  'use strict';
  var config = ${JSON.stringify(config)};
  var http = new URL(config.endpoint, window.location.href);
  var ws = new URL(http.href);
  ws.protocol = http.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({ url: http.href, subscriptionUrl: ws.href });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultQuery: config.defaultQuery, shouldPersistHeaders: false })
  );
})();
`;
}

/** The directory and version of an installed package (its `exports` may hide the UMD files). */
function packageDir(pkg: string): { dir: string; version: string } {
  const manifest = require.resolve(`${pkg}/package.json`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return { dir: path.dirname(manifest), version };
}

/** `/a/b/` → `/a/b`; only plain path segments, since the path is written into HTML unescaped. */
function normalisePath(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  if (!/^(?:\/[A-Za-z0-9._~-]+)+$/.test(trimmed)) {
    throw new Error(`GraphiQL path must be '/' followed by plain path segments (letters, digits, . _ ~ -), not the root: '${p}'`);
  }
  return trimmed;
}

/** `accept-encoding` names gzip (or `*`) without `q=0`. */
function acceptsGzip(request: FastifyRequest): boolean {
  const header = request.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}
