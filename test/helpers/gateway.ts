import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { silentLogger } from '../../src/telemetry/logger';

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
  extensions?: Record<string, unknown>;
}

/** Starts a whole gateway on 127.0.0.1:0 with test defaults (simulator mode unless a key is given). */
export async function startTestGateway(env: Record<string, string> = {}): Promise<Gateway> {
  return startGateway(testConfig({ SIMULATOR_LATENCY_MS: '0', SIMULATOR_TOKEN_DELAY_MS: '0', ...env }), silentLogger());
}

/** POSTs one GraphQL operation over HTTP, like a frontend would. */
export async function gql<T = Record<string, unknown>>(
  gateway: Pick<Gateway, 'graphqlUrl'>,
  query: string,
  variables?: Record<string, unknown>,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(gateway.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: JSON.stringify({ query, variables }),
    signal: init.signal,
  });
  const body = (await response.json()) as Omit<GraphQLResponse<T>, 'status' | 'headers'>;
  return { status: response.status, headers: response.headers, ...body };
}

export const COMPLETION_FIELDS = `id model content reasoningContent finishReason cached createdAt
  usage { promptTokens completionTokens totalTokens cacheHitTokens cacheMissTokens reasoningTokens }`;

/** Count of chat completion requests the simulator has received. */
export function chatCalls(gateway: Gateway): number {
  return gateway.simulator?.counters.byPath['/chat/completions'] ?? 0;
}
