import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gateway } from '../../src/app';
import { sha256Hex } from '../../src/graphql/persisted-documents';
import { startTestGateway, type GraphQLResponse } from '../helpers/gateway';

const MODE = 'query Mode { upstream { mode } }';

async function post(gateway: Gateway, body: unknown, headers: Record<string, string> = {}): Promise<GraphQLResponse> {
  const response = await fetch(gateway.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: response.status, headers: response.headers, ...((await response.json()) as object) };
}

const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

describe('automatic persisted queries', () => {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('asks for an unknown hash, registers it with its document, then serves the hash alone', async () => {
    const hash = sha256Hex(MODE);
    const unknown = await post(gateway, { extensions: persisted(hash) });
    expect(unknown.errors![0]!.extensions!.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    const registered = await post(gateway, { query: MODE, extensions: persisted(hash) });
    expect(registered.data).toEqual({ upstream: { mode: 'SIMULATOR' } });
    const byHash = await post(gateway, { extensions: persisted(hash) });
    expect(byHash.data).toEqual({ upstream: { mode: 'SIMULATOR' } });
  });
});

describe('trusted documents only (PERSISTED_DOCUMENTS_ONLY)', () => {
  let gateway: Gateway;
  beforeAll(async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'manifest-')), 'manifest.json');
    writeFileSync(
      path,
      JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: sha256Hex(MODE), name: 'Mode', type: 'query', body: MODE }] }),
    );
    gateway = await startTestGateway({ PERSISTED_DOCUMENTS_FILE: path, PERSISTED_DOCUMENTS_ONLY: 'true' });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('serves a manifest operation by hash without registering it first, and refuses free-form documents typed', async () => {
    const byHash = await post(gateway, { extensions: persisted(sha256Hex(MODE)) });
    expect(byHash.data).toEqual({ upstream: { mode: 'SIMULATOR' } });
    const same = await post(gateway, { query: MODE });
    expect(same.data).toEqual({ upstream: { mode: 'SIMULATOR' } });

    const before = gateway.simulator!.counters.total;
    const freeForm = await post(gateway, { query: '{ completion(input: {prompt: "not in the manifest"}) { id } }' });
    expect(freeForm.status).toBe(403);
    expect(freeForm.errors![0]!.extensions!.code).toBe('PERSISTED_QUERY_NOT_IN_LIST');
    const otherHash = await post(gateway, { extensions: persisted('b'.repeat(64)) });
    expect(otherHash.errors![0]!.extensions!.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(gateway.simulator!.counters.total).toBe(before);
  });
});
