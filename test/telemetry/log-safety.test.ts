import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { startGateway, type Gateway } from '../../src/app';
import { testConfig } from '../../src/config';
import { startSimulator, type Simulator } from '../../src/simulator';
import { createLogger } from '../../src/telemetry/logger';
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { gql } from '../helpers/gateway';

/**
 * Secrets and user text never reach a log line or a span, even at trace level and on every
 * error path. The key and prompts are distinctive strings that cannot occur by chance.
 */

const GOOD_KEY = 'sk-logtest-GOODKEY-zqxjkvw';
const BAD_KEY = 'sk-logtest-BADKEY-wvkjxqz';
const PROMPTS = {
  ok: 'PROMPT-ok-marmalade-quasar',
  system: 'SYSTEM-text-obsidian-lantern',
  rejected: 'PROMPT-rejected-tangerine-nebula',
  unavailable: 'PROMPT-503-periwinkle-glacier',
  timeout: 'PROMPT-timeout-saffron-comet',
  badInput: 'PROMPT-badinput-cobalt-meadow',
  parse: 'PROMPT-parse-vermilion-harbor',
  fimPrefix: 'PROMPT-fim-prefix-juniper',
  fimSuffix: 'PROMPT-fim-suffix-sequoia',
  mutation: 'PROMPT-mutation-heliotrope',
  auth: 'PROMPT-auth-ultramarine-fjord',
} as const;

const COMPLETION = 'query Ask($input: CompletionInput!) { completion(input: $input) { id content reasoningContent cached } }';

describe('logs and spans never hold keys, auth headers, prompts or answers', () => {
  const lines: string[] = [];
  const spans = new InMemorySpanExporter();
  let simulator: Simulator;
  let gateway: Gateway;
  let telemetry: Telemetry;
  const answers: string[] = [];

  beforeAll(async () => {
    simulator = await startSimulator({ apiKeys: [GOOD_KEY] });
    const config = testConfig({
      LOG_LEVEL: 'trace',
      DEEPSEEK_API_KEYS: `${GOOD_KEY},${BAD_KEY}`,
      DEEPSEEK_BASE_URL: simulator.url,
      DEEPSEEK_TIMEOUT_MS: '300',
      DEEPSEEK_MAX_RETRIES: '1',
      DEEPSEEK_RETRY_BASE_MS: '1',
      DEEPSEEK_RETRY_MAX_MS: '5',
      DEEPSEEK_BREAKER_MIN_CALLS: '100',
    });
    const logger = createLogger('trace', { write: (line: string) => void lines.push(line) });
    telemetry = startTelemetry(config.telemetry, { spanExporter: spans, logger });
    gateway = await startGateway(config, logger, { telemetry });
  });

  afterAll(async () => {
    await gateway.close();
    await simulator.close();
    await telemetry.shutdown();
  });

  it('runs successes, a cache hit and every kind of failure', async () => {
    // A miss, a hit, then a bypass: its call goes to the second key, refused with 401 and
    // disabled, and the same attempt goes on with the first key.
    for (const cache of ['USE', 'USE', 'BYPASS']) {
      const res = await gql<{ completion: { content: string; reasoningContent: string | null } }>(gateway, COMPLETION, {
        input: { prompt: PROMPTS.ok, system: PROMPTS.system, cache },
      });
      expect(res.errors).toBeUndefined();
      answers.push(res.data!.completion.content, res.data!.completion.reasoningContent ?? '');
    }
    expect(gateway.services.deepseek.status().keys.filter((key) => key.state === 'disabled')).toHaveLength(1);

    // 400 whose message echoes the prompt and the key (DeepSeek bodies sometimes echo input).
    simulator.faults.inject({ kind: 'status', status: 400, message: `bad request: ${PROMPTS.rejected} with ${GOOD_KEY}` });
    const rejected = await gql(gateway, COMPLETION, { input: { prompt: PROMPTS.rejected } });
    expect(rejected.errors?.[0].extensions?.code).toBe('UPSTREAM_REJECTED');

    // 503 twice: retried, then UPSTREAM_UNAVAILABLE.
    simulator.faults.inject({ kind: 'status', status: 503 }, { count: 2 });
    const unavailable = await gql(gateway, COMPLETION, { input: { prompt: PROMPTS.unavailable } });
    expect(unavailable.errors?.[0].extensions?.code).toBe('UPSTREAM_UNAVAILABLE');

    // No answer within the deadline.
    simulator.faults.inject({ kind: 'hang' });
    const timeout = await gql(gateway, COMPLETION, { input: { prompt: PROMPTS.timeout } });
    expect(timeout.errors?.[0].extensions?.code).toBe('UPSTREAM_TIMEOUT');

    // Invalid input and an unparsable document, both holding a prompt.
    const badInput = await gql(gateway, COMPLETION, { input: { prompt: PROMPTS.badInput, temperature: 99 } });
    expect(badInput.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const parse = await gql(gateway, `{ completion(input: {prompt: "${PROMPTS.parse}"}) { id `);
    expect(parse.errors?.[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');

    // FIM and a mutation.
    const fim = await gql<{ fimCompletion: { content: string } }>(
      gateway,
      'query Fim($input: FimInput!) { fimCompletion(input: $input) { content } }',
      { input: { prompt: PROMPTS.fimPrefix, suffix: PROMPTS.fimSuffix } },
    );
    expect(fim.errors).toBeUndefined();
    answers.push(fim.data!.fimCompletion.content);
    const mutation = await gql<{ createCompletion: { content: string } }>(
      gateway,
      'mutation Make($input: CompletionInput!) { createCompletion(input: $input) { content } }',
      { input: { prompt: PROMPTS.mutation, thinking: false } },
    );
    expect(mutation.errors).toBeUndefined();
    answers.push(mutation.data!.createCompletion.content);

    // Last: the remaining key is refused too → UPSTREAM_AUTH_FAILED.
    simulator.faults.inject({ kind: 'status', status: 401 });
    const auth = await gql(gateway, COMPLETION, { input: { prompt: PROMPTS.auth } });
    expect(auth.errors?.[0].extensions?.code).toBe('UPSTREAM_AUTH_FAILED');
  });

  it('wrote debug and trace detail, and exactly one request line per GraphQL request', () => {
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries.some((entry) => entry.level === 'debug' && entry.msg === 'upstream exchange')).toBe(true);
    expect(entries.some((entry) => entry.msg === 'upstream API key disabled')).toBe(true);
    const requests = entries.filter((entry) => entry.msg === 'graphql request');
    expect(requests).toHaveLength(11);
    expect(requests.map((entry) => entry.errorCodes ?? [])).toEqual([
      [],
      [],
      [],
      ['UPSTREAM_REJECTED'],
      ['UPSTREAM_UNAVAILABLE'],
      ['UPSTREAM_TIMEOUT'],
      ['BAD_USER_INPUT'],
      ['GRAPHQL_PARSE_FAILED'],
      [],
      [],
      ['UPSTREAM_AUTH_FAILED'],
    ]);
    expect(requests[0]).toMatchObject({ level: 'info', operationName: 'Ask', operationType: 'query', outcome: 'ok', upstreamCalls: 1, cacheHits: 0 });
    expect(requests[1]).toMatchObject({ upstreamCalls: 0, cacheHits: 1 });
    expect(requests[0].traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(requests[4]).toMatchObject({ level: 'warn', outcome: 'error' });
  });

  it('contains none of the keys, prompts or answers in any log line or span', () => {
    const logText = lines.join('');
    const spanText = JSON.stringify(
      spans.getFinishedSpans().map((span) => ({ name: span.name, attributes: span.attributes, events: span.events, status: span.status })),
    );
    expect(spans.getFinishedSpans().length).toBeGreaterThan(10);
    const secrets = [GOOD_KEY, BAD_KEY, `Bearer ${GOOD_KEY.slice(0, 12)}`, ...Object.values(PROMPTS), ...answers.filter((a) => a.length > 8)];
    for (const secret of secrets) {
      expect({ secret, inLogs: logText.includes(secret) }).toEqual({ secret, inLogs: false });
      expect({ secret, inSpans: spanText.includes(secret) }).toEqual({ secret, inSpans: false });
    }
    expect(logText).not.toMatch(/authorization/i);
  });
});
