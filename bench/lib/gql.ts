import { Pool } from 'undici';

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string; [key: string]: unknown } }>;
  /** The gateway's `extensions.cost` and the like. */
  extensions?: Record<string, unknown>;
}

/** A small GraphQL-over-HTTP client on an undici Pool (keep-alive). */
export class GraphQLClient {
  readonly pool: Pool;
  private readonly path: string;

  private readonly headers: Record<string, string>;

  constructor(
    readonly url: string,
    options: { connections?: number; timeoutMs?: number; headers?: Record<string, string> } = {},
  ) {
    this.headers = { 'content-type': 'application/json', ...options.headers };
    const parsed = new URL(url);
    this.path = parsed.pathname;
    this.pool = new Pool(parsed.origin, {
      connections: options.connections ?? 1,
      headersTimeout: options.timeoutMs ?? 30_000,
      bodyTimeout: options.timeoutMs ?? 30_000,
    });
  }

  async query<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>> {
    const response = await this.pool.request({
      method: 'POST',
      path: this.path,
      headers: this.headers,
      body: JSON.stringify(variables ? { query, variables } : { query }),
    });
    const text = await response.body.text();
    let parsed: Omit<GraphQLResponse<T>, 'status'>;
    try {
      parsed = JSON.parse(text) as Omit<GraphQLResponse<T>, 'status'>;
    } catch {
      parsed = { errors: [{ message: `non-JSON answer: ${text.slice(0, 200)}`, extensions: { code: `HTTP_${response.statusCode}` } }] };
    }
    return { status: response.statusCode, ...parsed };
  }

  async get(path: string): Promise<number> {
    const response = await this.pool.request({ method: 'GET', path });
    await response.body.dump();
    return response.statusCode;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export interface UpstreamSnapshot {
  calls: number;
  failures: number;
  retries: number;
  shortCircuited: number;
  rejectedOverloaded: number;
  circuit: string;
  circuitTransitions: Array<{ to: string; at: string }>;
  coalescing: { upstreamCalls: number; joinedInFlight: number; batches: number; meanBatchSize: number };
  cache: { hits: number; misses: number };
}

export const UPSTREAM_QUERY = `query BenchUpstream { upstream {
  calls failures retries shortCircuited rejectedOverloaded circuit
  circuitTransitions { to at }
  coalescing { upstreamCalls joinedInFlight batches meanBatchSize }
  cache { hits misses }
} }`;

export async function upstreamStatus(client: GraphQLClient): Promise<UpstreamSnapshot> {
  const result = await client.query<{ upstream: UpstreamSnapshot }>(UPSTREAM_QUERY);
  if (!result.data?.upstream) throw new Error(`upstream status query failed: ${JSON.stringify(result.errors)}`);
  return result.data.upstream;
}

/** A completion read (cache policy USE, the default) with the prompt as a variable. */
export const COMPLETION_QUERY = `query BenchCompletion($prompt: String!) {
  completion(input: { prompt: $prompt, thinking: false }) { id content cached }
}`;

/** The same with `cache: BYPASS`: every request goes upstream and nothing is stored. */
export const COMPLETION_BYPASS_QUERY = `query BenchCompletionBypass($prompt: String!) {
  completion(input: { prompt: $prompt, thinking: false, cache: BYPASS }) { id content cached }
}`;

export interface CompletionData {
  completion: { id: string; content: string; cached: boolean } | null;
}
