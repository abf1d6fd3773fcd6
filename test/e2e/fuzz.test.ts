import fc from 'fast-check';
import type { Gateway } from '../../src/app';
import { chatCalls, gql, startTestGateway } from '../helpers/gateway';
import { fuzzOperation } from '../helpers/fuzz/documents';
import { exchange, graphqlGet, jsonPost, sentText, type RawRequest } from '../helpers/fuzz/exchange';
import { subscriptionOperation } from '../helpers/fuzz/operations';
import { probeBodies, probeOperations, probeSubscriptions } from '../helpers/fuzz/probes';
import { fuzzBody, fuzzHttpRequest, fuzzStreamPayload, type StreamPayload } from '../helpers/fuzz/requests';
import { fuzzBudget, fuzzParameters } from '../helpers/fuzz/settings';
import { sendRawFrames, subscribeAll } from '../helpers/fuzz/streams';
import { anyValue } from '../helpers/fuzz/values';
import { assertNoProblems, graphqlAnswerProblems, leakProblems, sseAnswerProblems, type Answer } from '../helpers/fuzz/verdict';

/**
 * Property-based fuzzing of every way in (hardening issue: "a fuzz test runs in the suite
 * with a bounded budget"). Whatever a client sends (arbitrary text, grammar-built
 * documents, the schema's operations with hostile inputs, any variables, operation names
 * and APQ extensions, odd HTTP) over HTTP, WebSocket and SSE, the gateway answers:
 *   - never a 5xx, never a WebSocket close with an internal-error code (4500, 1011);
 *   - with a JSON body (or an SSE stream of JSON events) whose every error has a public
 *     `extensions.code` (src/errors/codes.ts), never INTERNAL_SERVER_ERROR, and never
 *     UPSTREAM_REJECTED (against the simulator that means bad input reached DeepSeek);
 *   - with no stack trace, source path, API key or Apollo's internal `extensions.http`
 *     in it, and Object.prototype untouched (the gateway runs in this process);
 *   - within HANG_LIMIT_MS (a hang detector, not a performance check);
 * and after each property it still serves (GET /healthz is 200; over WebSocket a real
 * subscription still streams). The hostile-input probes run first, as fixed examples.
 *
 * Budget (../helpers/fuzz/settings.ts): a fixed seed, fixed runs per property and a time
 * cap on each. FUZZ_SEED=<n>|random and FUZZ_RUNS=<n> widen the search; a failure prints
 * the seed and the shrunk counterexample, and FUZZ_SEED=<that seed> replays it.
 *
 * Defects the fuzzer found are pinned by the fixed cases below (model names that are
 * Object.prototype members, server message types sent by a client, SSE bodies and
 * parameters graphql-sse refused without a code, Accept variants, a text/plain POST).
 */

function wsUrl(gateway: Gateway): string {
  return gateway.graphqlUrl.replace(/^http/, 'ws');
}

async function expectHealthy(gateway: Gateway): Promise<void> {
  const health = await fetch(`${gateway.url}/healthz`);
  expect(health.status).toBe(200);
  await health.text();
}

/** GET /graphql with `Accept: text/html` is Apollo Sandbox's page (README, HTTP endpoints), not a GraphQL answer. */
function isLandingPage(request: RawRequest, answer: Answer): boolean {
  return request.method === 'GET' && /text\/html/.test(request.headers.accept ?? '') && answer.status === 200 && /text\/html/.test(answer.contentType ?? '');
}

/** Sends `request` to /graphql and applies every check to the answer. */
async function expectSafeHttp(gateway: Gateway, request: RawRequest): Promise<void> {
  const answer = await exchange(gateway.url, request);
  const sent = sentText(request);
  assertNoProblems(answer, isLandingPage(request, answer) ? leakProblems(answer.text, sent) : graphqlAnswerProblems(answer, sent));
}

describe('fuzzed GraphQL over HTTP (POST and GET /graphql)', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  const documents = fuzzBudget(150, 6_000);
  it(
    'answers every document (text, grammar-built, the schema operations with hostile inputs) with a typed answer',
    async () => {
      await fc.assert(
        fc.asyncProperty(fuzzOperation, async (operation) => {
          await expectSafeHttp(gateway, jsonPost('/graphql', operation));
        }),
        fuzzParameters(documents, probeOperations()),
      );
      await expectHealthy(gateway);
    },
    documents.testTimeoutMs,
  );

  const bodies = fuzzBudget(100, 4_000);
  it(
    'answers every set of variables, operation name and extensions (APQ included) with a typed answer',
    async () => {
      await fc.assert(
        fc.asyncProperty(fuzzBody(), async (body) => {
          await expectSafeHttp(gateway, jsonPost('/graphql', body));
        }),
        fuzzParameters(bodies, probeBodies()),
      );
      await expectHealthy(gateway);
    },
    bodies.testTimeoutMs,
  );

  const transport = fuzzBudget(80, 3_000);
  it(
    'answers GET requests, raw bodies and odd content types with a typed answer',
    async () => {
      await fc.assert(
        fc.asyncProperty(fuzzHttpRequest, async (request) => {
          await expectSafeHttp(gateway, request);
        }),
        fuzzParameters(transport),
      );
      await expectHealthy(gateway);
    },
    transport.testTimeoutMs,
  );

  // DEFECT (found by this fuzzer; cause outside this change): a model named after a member
  // of Object.prototype passes validation and is sent to DeepSeek, which rejects it (the
  // answer is UPSTREAM_REJECTED after an upstream call, not BAD_USER_INPUT before one).
  // src/deepseek/catalog.ts `lookupModel` reads MODEL_ALIASES[id] and RETIRED_MODELS[id]
  // on plain objects, so `constructor` and `toString` are "aliases" served as a function,
  // `__proto__` as Object.prototype. Fix: `Object.hasOwn` before each read.
  it.each(['constructor', '__proto__', 'toString'])('refuses the model name %j as BAD_USER_INPUT without an upstream call', async (model) => {
    const before = chatCalls(gateway);
    const res = await gql(gateway, `{ completion(input: {prompt: "Hello", model: ${JSON.stringify(model)}, maxTokens: 1}) { id } }`);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.model' });
    expect(chatCalls(gateway)).toBe(before);
  });
});

/**
 * Frames graphql-ws's client would never send: not JSON, unknown types, malformed
 * subscribes, duplicate ids, variables nested thousands of levels deep.
 */
const rawFrame: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.uint8Array({ maxLength: 100 }).map((bytes) => Buffer.from(bytes)),
  fc.jsonValue({ maxDepth: 3 }).map((json) => JSON.stringify(json)),
  fc
    .record(
      {
        // The server's own message types included: a client that sends one is closed 4400.
        type: fc.constantFrom<unknown>('subscribe', 'complete', 'connection_init', 'ping', 'pong', 'next', 'error', 'connection_ack', 'x', 1, null),
        id: fc.constantFrom<unknown>('1', '1', '', 1, null, 'x'.repeat(1000)),
        payload: fc.oneof(
          subscriptionOperation.map((operation): unknown => ({ ...operation })),
          fc.record({ query: anyValue, variables: anyValue, operationName: anyValue, extensions: anyValue }, { requiredKeys: [] }),
          anyValue,
        ),
      },
      { requiredKeys: ['type'] },
    )
    .map((message) => JSON.stringify(message)),
  fc.tuple(fc.integer({ min: 100, max: 10_000 }), fc.boolean()).map(([depth, list]) => {
    const deep = list ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    return `{"type":"subscribe","id":"deep","payload":{"query":"subscription ($input: CompletionInput!) { completionStream(input: $input) { delta } }","variables":{"input":${deep}}}}`;
  }),
);

describe('fuzzed subscriptions over WebSocket (graphql-ws on /graphql)', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  /** After a property: a real subscription on a new connection still streams to completion. */
  async function expectStillStreaming(): Promise<void> {
    const outcome = await subscribeAll(wsUrl(gateway), [
      { query: 'subscription { completionStream(input: {prompt: "still serving", thinking: false, maxTokens: 4}) { delta } }' },
    ]);
    expect(outcome.problems).toEqual([]);
    expect(outcome.text).toMatch(/"next".*"complete"/);
    await expectHealthy(gateway);
  }

  const payloads = fuzzBudget(40, 4_000);
  it(
    'answers every subscribe payload with typed results or errors, and never closes a socket with 4500',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fuzzStreamPayload({ rawJson: false }), { minLength: 1, maxLength: 3 }), async (batch) => {
          const outcome = await subscribeAll(wsUrl(gateway), batch);
          const answer: Answer = { via: 'WebSocket subscribe', text: outcome.text };
          assertNoProblems(answer, [...outcome.problems, ...leakProblems(outcome.text, JSON.stringify(batch))]);
        }),
        fuzzParameters(payloads, [probeSubscriptions().map((operation): StreamPayload => ({ ...operation }))]),
      );
      await expectStillStreaming();
    },
    payloads.testTimeoutMs,
  );

  const frames = fuzzBudget(20, 2_000);
  it(
    'answers raw frames it cannot use with a 44xx close or an error, never 4500, and keeps serving',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(rawFrame, { minLength: 1, maxLength: 4 }), async (batch) => {
          const outcome = await sendRawFrames(wsUrl(gateway), batch);
          const answer: Answer = { via: 'WebSocket raw frames', text: outcome.text };
          assertNoProblems(answer, [...outcome.problems, ...leakProblems(outcome.text, batch.map(String).join('\n'))]);
        }),
        fuzzParameters(frames),
      );
      await expectStillStreaming();
    },
    frames.testTimeoutMs,
  );

  // DEFECT (found by this fuzzer; cause outside this change): a client that sends one of the
  // server's message types gets its socket closed with 4500 Internal server error (not 4400
  // Bad Request), and graphql-ws writes the error and its stack with console.error, past the
  // gateway's logger. graphql-ws's server throws "Unexpected message of type next received"
  // and its ws adapter (graphql-ws/use/ws) turns every throw into 4500. Fix belongs in
  // src/http/websocket.ts (refuse client frames of server types with 4400 before graphql-ws).
  it.each([
    { type: 'next', id: '1', payload: {} },
    { type: 'error', id: '1', payload: [{ message: 'x' }] },
    { type: 'connection_ack' },
  ])('closes a socket that sends $type with 4400, not 4500', async (message) => {
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const outcome = await sendRawFrames(wsUrl(gateway), [JSON.stringify(message)]);
      expect(outcome.problems).toEqual([]);
      expect(logged).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
    }
  });

  it.each([
    ['a type spelled with a unicode escape', '{"type":"\\u006eext","id":"1","payload":{}}'],
    ['spaces around the colon', '{"id":"1" , "type" : "error", "payload":[{"message":"x"}]}'],
  ])('closes a socket that sends a server type written with %s with 4400, not 4500', async (_how, frame) => {
    const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const outcome = await sendRawFrames(wsUrl(gateway), [frame]);
      expect(outcome.problems).toEqual([]);
      expect(logged).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
    }
  });
});

/**
 * Subscriptions POSTed (or sent as GET) to /graphql asking for a stream: Apollo's multipart
 * protocol or GraphQL over SSE.
 */
const streamOnGraphqlRequest: fc.Arbitrary<RawRequest> = fc
  .tuple(
    fuzzStreamPayload({ rawJson: true }),
    fc.constantFrom('multipart/mixed;subscriptionSpec="1.0", application/json', 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json', 'text/event-stream'),
    fc.nat({ max: 3 }),
  )
  .map(([payload, accept, method]) =>
    method === 0
      ? graphqlGet('/graphql', { ...payload }, { accept, 'apollo-require-preflight': 'true' })
      : jsonPost('/graphql', payload, { accept }),
  )
  // Node refuses request heads over 16 KB (431) before the gateway sees them; stay under.
  .filter((request) => request.path.length < 12_000);

describe('fuzzed subscriptions over HTTP on /graphql (multipart and SSE)', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  const streams = fuzzBudget(30, 3_000);
  it(
    'streams or refuses every subscription with typed parts or events, or a typed 4xx',
    async () => {
      await fc.assert(
        fc.asyncProperty(streamOnGraphqlRequest, async (request) => {
          const answer = await exchange(gateway.url, request);
          assertNoProblems(answer, graphqlAnswerProblems(answer, sentText(request)));
        }),
        fuzzParameters(
          streams,
          probeSubscriptions().map((operation) => jsonPost('/graphql', operation, { accept: 'multipart/mixed;subscriptionSpec="1.0", application/json' })),
        ),
      );
      await expectHealthy(gateway);
    },
    streams.testTimeoutMs,
  );
});

/**
 * Requests to /graphql/stream whose operation is well-formed enough to reach the
 * gateway's pipeline (the gateway checks the shape itself first; the fixed cases below pin
 * those refusals). POST mostly, GET sometimes.
 */
const sseRequest: fc.Arbitrary<RawRequest> = fc
  .tuple(fuzzStreamPayload({ rawJson: true }), fc.nat({ max: 3 }))
  .map(([payload, method]) =>
    method === 0
      ? graphqlGet('/graphql/stream', { ...payload }, { accept: 'text/event-stream' })
      : jsonPost('/graphql/stream', payload, { accept: 'text/event-stream' }),
  )
  // Node refuses request heads over 16 KB (431) before the gateway sees them; stay under.
  .filter((request) => request.path.length < 12_000);

describe('fuzzed subscriptions over SSE (POST and GET /graphql/stream)', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  async function sseProblems(request: RawRequest, hangLimitMs?: number): Promise<string[]> {
    const answer = await exchange(gateway.url, request, hangLimitMs);
    return sseAnswerProblems(answer, sentText(request)).map((problem) => `${problem} (status ${answer.status}: ${answer.text.slice(0, 200)})`);
  }

  const streams = fuzzBudget(30, 3_000);
  it(
    'streams or refuses every subscription with typed events or a typed 4xx',
    async () => {
      await fc.assert(
        fc.asyncProperty(sseRequest, async (request) => {
          const answer = await exchange(gateway.url, request);
          assertNoProblems(answer, sseAnswerProblems(answer, sentText(request)));
        }),
        fuzzParameters(
          streams,
          probeSubscriptions().map((operation) => jsonPost('/graphql/stream', operation, { accept: 'text/event-stream' })),
        ),
      );
      await expectHealthy(gateway);
    },
    streams.testTimeoutMs,
  );

  const SUBSCRIPTION = 'subscription { completionStream(input: {prompt: "Hi", thinking: false, maxTokens: 2}) { delta } }';
  const ssePost = (body: string, headers: Record<string, string> = {}): RawRequest => ({
    method: 'POST',
    path: '/graphql/stream',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body,
  });

  // DEFECT (found while writing this fuzzer; cause outside this change): a JSON body that
  // is falsy (null, 0, false, "") is never answered: the request hangs until the client
  // gives up. graphql-sse's Fastify adapter (graphql-sse/lib/use/fastify.js) takes
  // `req.body` only when truthy, and otherwise reads the raw request stream, which Fastify
  // has already consumed, so its 'end' never comes. Fix belongs in src/http/sse.ts (refuse
  // a body that is not a JSON object before handing the request to graphql-sse). Detected
  // with a 2 s limit (a refusal takes milliseconds), the four at once, to keep the suite fast.
  it('answers the JSON bodies null, 0, false and "" with a typed 400 instead of hanging', async () => {
    const problems = await Promise.all(
      ['null', '0', 'false', '""'].map((body) => sseProblems(ssePost(body), 2_000).catch((error: Error) => [`${body}: ${error.message}`])),
    );
    expect(problems.flat()).toEqual([]);
  });

  // DEFECT (found while writing this fuzzer; cause outside this change): graphql-sse checks
  // the request's parameters itself and answers its refusals with errors that carry no
  // `extensions.code` ("Missing query", "Invalid query", "Invalid variables", "Invalid
  // extensions", "JSON body must be an object", "Unparsable URL", a JSON.parse message).
  // Fix belongs in src/http/sse.ts (check the parameters in the route, or rewrite those
  // answers with BAD_REQUEST).
  it.each<[string, RawRequest]>([
    ['a body without a query', ssePost('{}')],
    ['a query that is not a string', ssePost('{"query":1}')],
    ['variables that are not an object', ssePost(JSON.stringify({ query: SUBSCRIPTION, variables: [1] }))],
    ['extensions that are not an object', ssePost(JSON.stringify({ query: SUBSCRIPTION, extensions: 'x' }))],
    ['a JSON body that is not an object', ssePost('true')],
    ['a JSON string body', ssePost('"x"')],
    ['GET variables that are not JSON', graphqlGet('/graphql/stream', { query: SUBSCRIPTION, variables: '{' }, { accept: 'text/event-stream' })],
  ])('refuses %s with a typed 400', async (_what, request) => {
    expect(await sseProblems(request)).toEqual([]);
  });

  // DEFECT (found while writing this fuzzer; cause outside this change): the route accepts
  // any Accept header that contains text/event-stream, but graphql-sse serves a subscription
  // only for exactly `text/event-stream`; anything else (a list, a parameter, other case)
  // gets a 404 "Stream not found" without a code. Fix belongs in src/http/sse.ts.
  it.each(['text/event-stream, */*', 'text/event-stream; charset=utf-8', 'TEXT/EVENT-STREAM'])(
    'streams a subscription for Accept: %s',
    async (accept) => {
      const answer = await exchange(gateway.url, ssePost(JSON.stringify({ query: SUBSCRIPTION }), { accept }));
      expect(answer.status).toBe(200);
      expect(sseAnswerProblems(answer, '')).toEqual([]);
    },
  );

  // DEFECT (found while writing this fuzzer; cause outside this change): a POST that passes
  // CSRF prevention with a content type other than JSON (text/plain with an
  // apollo-require-preflight header) is answered 415 with an empty body, not a JSON error.
  // graphql-sse returns a bare 415 for any POST that is not application/json. Fix belongs
  // in src/http/sse.ts.
  it('refuses a text/plain POST with a JSON error body', async () => {
    const request = ssePost(JSON.stringify({ query: SUBSCRIPTION }), { 'content-type': 'text/plain', 'apollo-require-preflight': 'true' });
    expect(await sseProblems(request)).toEqual([]);
  });
});
