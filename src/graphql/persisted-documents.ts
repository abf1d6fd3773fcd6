import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GraphQLError } from 'graphql';
import { ErrorCode } from '../errors';

/** One operation of Apollo's persisted-query manifest. */
interface ManifestOperation {
  id: string;
  name: string;
  type: 'query' | 'mutation' | 'subscription';
  body: string;
}

/** What a transport received, in the shape every transport shares. */
export interface DocumentRequest {
  query?: unknown;
  extensions?: unknown;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Trusted documents: the operations of an Apollo persisted-query manifest
 * (`PERSISTED_DOCUMENTS_FILE`, `{ "format": "apollo-persisted-query-manifest", "version": 1,
 * "operations": [{ "id", "name", "type", "body" }] }`, as `generate-persisted-query-manifest`
 * writes it, ids being the SHA-256 of the body). A request that names one by
 * `extensions.persistedQuery.sha256Hash` gets its body; with `only` (PERSISTED_DOCUMENTS_ONLY)
 * a document not in the manifest is refused unless the caller is an administrator.
 */
export class PersistedDocuments {
  readonly #byId: ReadonlyMap<string, string>;
  readonly #bodies: ReadonlySet<string>;

  constructor(
    operations: readonly ManifestOperation[],
    readonly only: boolean,
  ) {
    this.#byId = new Map(operations.map((operation) => [operation.id, operation.body]));
    this.#bodies = new Set(operations.map((operation) => sha256Hex(operation.body)));
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Reads and checks a manifest file; throws an Error naming the problem (never its content). */
  static load(path: string, only: boolean): PersistedDocuments {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new Error(`PERSISTED_DOCUMENTS_FILE: expected a readable JSON manifest (${(error as NodeJS.ErrnoException).code ?? 'not JSON'})`);
    }
    const manifest = json as { format?: unknown; version?: unknown; operations?: unknown };
    if (manifest?.format !== 'apollo-persisted-query-manifest' || manifest.version !== 1 || !Array.isArray(manifest.operations)) {
      throw new Error('PERSISTED_DOCUMENTS_FILE: expected { "format": "apollo-persisted-query-manifest", "version": 1, "operations": [...] }');
    }
    const operations = manifest.operations.map((operation: unknown, index: number): ManifestOperation => {
      const { id, name, type, body } = (operation ?? {}) as Record<string, unknown>;
      if (typeof id !== 'string' || typeof body !== 'string' || typeof name !== 'string' || !['query', 'mutation', 'subscription'].includes(type as string)) {
        throw new Error(`PERSISTED_DOCUMENTS_FILE: operations[${index}] needs a string id, name and body and a type of query, mutation or subscription`);
      }
      return { id, name, type: type as ManifestOperation['type'], body };
    });
    return new PersistedDocuments(operations, only);
  }

  /**
   * Gives a request naming a manifest operation its body (in place: the transport's own
   * request object, before anything reads it), then, with `only`, refuses a document that
   * is not in the manifest unless `trusted` (an administrator may send free-form documents).
   * Returns the refusal, or undefined.
   */
  resolve(request: DocumentRequest, trusted: boolean): GraphQLError | undefined {
    const hash = persistedHash(request.extensions);
    if (typeof request.query !== 'string' && hash !== undefined) {
      const body = this.#byId.get(hash);
      if (body !== undefined) request.query = body;
    }
    if (!this.only || trusted) return undefined;
    if (typeof request.query === 'string' && this.#bodies.has(sha256Hex(request.query))) return undefined;
    if (typeof request.query !== 'string') {
      // Only a hash, and not one of ours: the client may not register documents here.
      return new GraphQLError('PersistedQueryNotFound', { extensions: { code: ErrorCode.PERSISTED_QUERY_NOT_FOUND, http: { status: 400 } } });
    }
    return new GraphQLError('This gateway serves only the operations of its persisted-query manifest (PERSISTED_DOCUMENTS_ONLY).', {
      extensions: { code: ErrorCode.PERSISTED_QUERY_NOT_IN_LIST, http: { status: 403 } },
    });
  }
}

/** `extensions.persistedQuery.sha256Hash`, when it is a well-formed hash. */
function persistedHash(extensions: unknown): string | undefined {
  const persisted = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)?.persistedQuery;
  const hash = persisted?.sha256Hash;
  return typeof hash === 'string' && SHA256_HEX.test(hash) ? hash : undefined;
}
