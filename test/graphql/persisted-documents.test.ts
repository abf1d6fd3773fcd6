import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PersistedDocuments, sha256Hex, type DocumentRequest } from '../../src/graphql/persisted-documents';

const BODY = 'query Ask($input: CompletionInput!) { completion(input: $input) { id content } }';
const ID = sha256Hex(BODY);

function manifest(operations: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'manifest-'));
  const path = join(dir, 'persisted-query-manifest.json');
  writeFileSync(path, JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations }));
  return path;
}

const byHash = (hash: string): DocumentRequest => ({ extensions: { persistedQuery: { version: 1, sha256Hash: hash } } });

describe('trusted documents (an Apollo persisted-query manifest)', () => {
  const path = manifest([{ id: ID, name: 'Ask', type: 'query', body: BODY }]);

  it('gives a request that names a manifest operation by hash its body', () => {
    const documents = PersistedDocuments.load(path, false);
    const request = byHash(ID);
    expect(documents.resolve(request, false)).toBeUndefined();
    expect(request.query).toBe(BODY);
  });

  it('lets free-form documents through unless PERSISTED_DOCUMENTS_ONLY', () => {
    expect(PersistedDocuments.load(path, false).resolve({ query: '{ __typename }' }, false)).toBeUndefined();
  });

  it('with PERSISTED_DOCUMENTS_ONLY refuses documents outside the manifest, typed, except for a trusted caller', () => {
    const documents = PersistedDocuments.load(path, true);
    expect(documents.resolve({ query: BODY }, false)).toBeUndefined();
    expect(documents.resolve(byHash(ID), false)).toBeUndefined();
    expect(documents.resolve({ query: '{ __typename }' }, false)?.extensions).toMatchObject({ code: 'PERSISTED_QUERY_NOT_IN_LIST' });
    expect(documents.resolve(byHash('a'.repeat(64)), false)?.extensions).toMatchObject({ code: 'PERSISTED_QUERY_NOT_FOUND' });
    // An administrator may still send free-form documents.
    expect(documents.resolve({ query: '{ __typename }' }, true)).toBeUndefined();
  });

  it('refuses a malformed manifest with a message that names the variable, never its content', () => {
    expect(() => PersistedDocuments.load(manifest([{ id: 1, body: 'secret body' }]), true)).toThrow(/PERSISTED_DOCUMENTS_FILE: operations\[0\] needs/);
    expect(() => PersistedDocuments.load('/nonexistent/manifest.json', true)).toThrow(/PERSISTED_DOCUMENTS_FILE: expected a readable JSON manifest \(ENOENT\)/);
  });
});
