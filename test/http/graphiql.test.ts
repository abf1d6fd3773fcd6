import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerGraphiQL } from '../../src/http/graphiql';

/** The opening tags of every <script> and <link> in a page. */
function tags(html: string, name: 'script' | 'link'): string[] {
  return html.match(new RegExp(`<${name}\\b[^>]*>`, 'gi')) ?? [];
}

function attribute(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag)?.[1];
}

/** Script and stylesheet URLs the page makes the browser load. */
function assetUrls(html: string): { scripts: string[]; styles: string[] } {
  const scripts = tags(html, 'script').map((t) => attribute(t, 'src')).filter((src): src is string => src !== undefined);
  const styles = tags(html, 'link')
    .filter((t) => attribute(t, 'rel') === 'stylesheet')
    .map((t) => attribute(t, 'href'))
    .filter((href): href is string => href !== undefined);
  return { scripts, styles };
}

function installedFile(pkg: string, file: string): { version: string; body: Buffer } {
  const manifest = require.resolve(`${pkg}/package.json`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return { version, body: readFileSync(path.join(path.dirname(manifest), file)) };
}

describe('GraphiQL explorer served from npm packages (works offline)', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = Fastify();
    registerGraphiQL(app, { endpoint: '/graphql' });
    await app.ready();
  });
  afterAll(() => app.close());

  it('serves an HTML page at /graphiql with a self-only Content-Security-Policy and no-cache', async () => {
    const res = await app.inject({ method: 'GET', url: '/graphiql', headers: { host: 'gateway.test:4000' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body).toMatch(/^<!doctype html>/i);
    expect(res.body).toContain('id="graphiql"');

    const csp = String(res.headers['content-security-policy']);
    const directives = new Map(csp.split(';').map((d) => {
      const [name, ...sources] = d.trim().split(/\s+/);
      return [name, sources] as const;
    }));
    expect(directives.get('default-src')).toEqual(["'none'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('style-src')).toEqual(["'self'"]);
    expect(directives.get('connect-src')).toEqual(["'self'", 'ws://gateway.test:4000', 'wss://gateway.test:4000']);
    expect(csp).not.toMatch(/unsafe-(inline|eval)|\*/);
  });

  it('loads React, ReactDOM and GraphiQL only from same-origin paths, each answering 200 with its content type', async () => {
    const page = await app.inject({ method: 'GET', url: '/graphiql' });
    const { scripts, styles } = assetUrls(page.body);
    expect(scripts.length).toBeGreaterThanOrEqual(4); // react, react-dom, graphiql, the boot script
    expect(styles.length).toBeGreaterThanOrEqual(1);

    for (const [urls, contentType] of [[scripts, /^text\/javascript/], [styles, /^text\/css/]] as const) {
      for (const url of urls) {
        // Same-origin: a path on this host, never a scheme or a protocol-relative //host.
        expect(url).toMatch(/^\/(?!\/)/);
        const res = await app.inject({ method: 'GET', url });
        expect({ url, status: res.statusCode }).toEqual({ url, status: 200 });
        expect(res.headers['content-type']).toMatch(contentType);
        expect(res.rawPayload.length).toBeGreaterThan(0);
        expect(res.headers['cache-control']).toContain('immutable');
      }
    }
  });

  it('serves the bundles byte for byte from the installed packages, at URLs carrying their versions', async () => {
    const page = await app.inject({ method: 'GET', url: '/graphiql' });
    const { scripts, styles } = assetUrls(page.body);
    const expected = [
      { pkg: 'react', file: 'umd/react.production.min.js', urls: scripts },
      { pkg: 'react-dom', file: 'umd/react-dom.production.min.js', urls: scripts },
      { pkg: 'graphiql', file: 'graphiql.min.js', urls: scripts },
      { pkg: 'graphiql', file: 'graphiql.min.css', urls: styles },
    ];
    for (const { pkg, file, urls } of expected) {
      const installed = installedFile(pkg, file);
      const url = urls.find((u) => u.includes(`/${pkg}@${installed.version}/`));
      expect({ pkg, url }).toEqual({ pkg, url: expect.any(String) });
      const res = await app.inject({ method: 'GET', url: url as string });
      expect(res.rawPayload.equals(installed.body)).toBe(true);
    }
  });

  it('references no http:// or https:// URL from any <script> or <link> tag', async () => {
    const page = await app.inject({ method: 'GET', url: '/graphiql' });
    const all = [...tags(page.body, 'script'), ...tags(page.body, 'link')];
    expect(all.length).toBeGreaterThan(0);
    for (const tag of all) expect(tag).not.toMatch(/https?:\/\//i);
    // Nor inline code, which the CSP would refuse anyway.
    expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
    expect(page.body).not.toMatch(/<style\b/i);
  });

  it('answers 404 for an asset path it does not serve', async () => {
    const page = await app.inject({ method: 'GET', url: '/graphiql' });
    const react = assetUrls(page.body).scripts.find((u) => u.includes('/react@')) as string;
    for (const url of [
      '/graphiql/assets/nothing-here.js',
      react.replace(/react@[^/]+/, 'react@0.0.0'),
      react.replace('react.production.min.js', 'react.development.js'),
      '/graphiql/assets/react@18.3.1/../../../package.json',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect({ url, status: res.statusCode }).toEqual({ url, status: 404 });
    }
  });

  it('gzips large assets for clients that accept gzip, and only for them', async () => {
    const page = await app.inject({ method: 'GET', url: '/graphiql' });
    const bundle = assetUrls(page.body).scripts.find((u) => u.includes('/graphiql@')) as string;
    const plain = await app.inject({ method: 'GET', url: bundle });
    const gzipped = await app.inject({ method: 'GET', url: bundle, headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.headers.vary).toContain('accept-encoding');
    expect(gzipped.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
    expect(gunzipSync(gzipped.rawPayload).equals(plain.rawPayload)).toBe(true);

    const refused = await app.inject({ method: 'GET', url: bundle, headers: { 'accept-encoding': 'gzip;q=0, identity' } });
    expect(refused.headers['content-encoding']).toBeUndefined();
    expect(refused.rawPayload.equals(plain.rawPayload)).toBe(true);
  });

  it('puts only a well-formed Host into connect-src, so a request cannot add CSP directives', async () => {
    const res = await app.inject({ method: 'GET', url: '/graphiql', headers: { host: "evil.test; script-src * 'unsafe-inline'" } });
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("connect-src 'self';");
    expect(csp).not.toContain('evil.test');
    expect(csp.match(/script-src/g)).toHaveLength(1);
  });

  it('honours a custom path and endpoint: page, assets and the fetcher configuration follow them', async () => {
    const custom = Fastify();
    registerGraphiQL(custom, { path: '/explorer/', endpoint: '/api/graphql', defaultQuery: '{ models { id } }' });
    try {
      const page = await custom.inject({ method: 'GET', url: '/explorer' });
      expect(page.statusCode).toBe(200);
      const { scripts, styles } = assetUrls(page.body);
      for (const url of [...scripts, ...styles]) {
        expect(url.startsWith('/explorer/assets/')).toBe(true);
        expect((await custom.inject({ method: 'GET', url })).statusCode).toBe(200);
      }
      // The boot script is the one script not taken from a package.
      const boot = scripts.find((u) => !u.includes('@')) as string;
      const source = (await custom.inject({ method: 'GET', url: boot })).body;
      expect(source).toContain(JSON.stringify('/api/graphql'));
      expect(source).toContain(JSON.stringify('{ models { id } }'));
      expect(source).toContain('window.location');
      expect((await custom.inject({ method: 'GET', url: '/graphiql' })).statusCode).toBe(404);
    } finally {
      await custom.close();
    }
  });

  it('refuses a path that is the root, relative, or not plain path segments', async () => {
    const other = Fastify();
    for (const bad of ['graphiql', '/', '', '/a"b', '/a b', '/x/<script>']) {
      expect(() => registerGraphiQL(other, { path: bad, endpoint: '/graphql' })).toThrow(/GraphiQL path must be '\/' followed by plain path segments/);
    }
    await other.close();
  });
});
