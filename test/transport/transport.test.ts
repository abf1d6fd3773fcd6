import { startSimulator, type Simulator } from '../../src/simulator';
import { TransportError } from '../../src/transport/errors';
import { keyFingerprint } from '../../src/transport/key-pool';
import { Transport } from '../../src/transport/transport';
import type { UpstreamHandler, UpstreamRequest, UpstreamResponse } from '../../src/transport/types';
import { BAD_KEY, GOOD_KEY, capturingLogger, chatRequest, failureOf, startHarness, testSettings, waitFor, type Harness } from '../deepseek/harness';
import { rejectionOf, textHandler } from './fakes';

type Line = Record<string, unknown>;

/** The composed transport on its own, against the simulator: failures in transport terms. */
describe('transport', () => {
  let sim: Simulator;
  let transport: Transport;
  const logs: string[] = [];

  beforeEach(async () => {
    sim = await startSimulator({ apiKeys: [GOOD_KEY] });
    transport = new Transport({
      settings: testSettings({ baseUrl: sim.url, timeoutMs: 10_000 }),
      logger: capturingLogger(logs),
      traceIdHeader: 'x-ds-trace-id',
    });
  });
  afterEach(async () => {
    await transport.close();
    await sim.close();
  });

  function chat(overrides: Partial<UpstreamRequest> = {}): UpstreamRequest {
    return {
      method: 'POST',
      path: '/chat/completions',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'deepseek-flash', messages: chatRequest().messages, stream: overrides.stream ?? false }),
      stream: false,
      ...overrides,
    };
  }

  it('fails with a status TransportError carrying its facts, the attempts counted and the key scrubbed', async () => {
    sim.faults.inject({ kind: 'status', status: 500, message: `echoing ${GOOD_KEY}` }, { count: 3 });

    const error = await rejectionOf(transport.request(chat(), textHandler()));

    expect(error).toBeInstanceOf(TransportError);
    expect(error).toMatchObject({ kind: 'status', status: 500, retryable: true, attempts: 3, keyFingerprint: keyFingerprint(GOOD_KEY) });
    expect((error as TransportError).traceId).toMatch(/^[0-9a-f]{32}$/);
    const failure = (error as TransportError).failure as { body: string };
    expect(failure.body).toContain('echoing [redacted]');
    expect(failure.body).not.toContain(GOOD_KEY);
    expect(transport.status()).toMatchObject({ calls: 1, failures: 1, retries: 2 });
  });

  it('fails with a retryable network TransportError after resets, keeping the socket error as its cause', async () => {
    sim.faults.inject({ kind: 'reset' }, { count: 3 });

    const error = await rejectionOf(transport.request(chat(), textHandler()));

    expect(error).toMatchObject({ kind: 'network', retryable: true, attempts: 3 });
    expect((error as TransportError).cause).toMatchObject({ code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET)$/) });
  });

  it('resolves a stream at its headers and holds its slot until its body closes', async () => {
    let attempts = 0;
    const handler: UpstreamHandler<UpstreamResponse> = { onExchange: () => (attempts += 1), onResponse: async (response) => response };

    const response = await transport.request(chat({ stream: true, headers: { 'content-type': 'application/json', accept: 'text/event-stream' } }), handler);

    expect(response.status).toBe(200);
    expect(attempts).toBe(1);
    expect(transport.status().inFlight).toBe(1);
    let text = '';
    for await (const chunk of response.body) text += String(chunk);
    expect(text).toContain('data: [DONE]');
    await waitFor(() => transport.status().inFlight === 0);
  });

  it('aborts calls in flight with a closed TransportError and fails new calls without a request', async () => {
    sim.faults.inject({ kind: 'hang' });
    const running = rejectionOf(transport.request(chat(), textHandler()));
    await waitFor(() => sim.counters.inFlight === 1);

    await transport.close();

    expect(await running).toMatchObject({ kind: 'closed', attempts: 1 });
    const after = await rejectionOf(transport.request(chat(), textHandler()));
    expect(after).toMatchObject({ kind: 'closed', attempts: undefined });
    expect(sim.counters.total).toBe(1);
  });

  it('aborts a call waiting between attempts at once when it closes, not after its backoff', async () => {
    const patient = new Transport({
      settings: testSettings({ baseUrl: sim.url, timeoutMs: 600_000, maxRetries: 2, retryBaseMs: 300_000, retryMaxMs: 300_000 }),
      logger: capturingLogger(logs),
      tuning: { random: () => 0.99 },
    });
    sim.faults.inject({ kind: 'status', status: 503 }, { count: 1 });
    const running = rejectionOf(patient.request(chat(), textHandler()));
    // The first attempt failed; the call now waits minutes for its second.
    await waitFor(() => sim.counters.total === 1 && patient.status().retries === 1);

    await patient.close();

    expect(await running).toMatchObject({ kind: 'closed' });
    expect(sim.counters.total).toBe(1);
  });

  it('names failures in spans, metrics and logs by their kind when the provider gives no names', async () => {
    sim.faults.inject({ kind: 'status', status: 400 });
    logs.length = 0;

    await rejectionOf(transport.request(chat(), textHandler()));

    const exchange = logs.map((line) => JSON.parse(line) as Line).find((l) => l.msg === 'upstream exchange');
    expect(exchange).toMatchObject({ status: 400, error: 'status' });
  });
});

describe('transport warnings through the client', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('warns when a key is disabled and when the circuit changes state', async () => {
    h = await startHarness({ config: { apiKeys: [BAD_KEY, GOOD_KEY], breakerMinCalls: 1, maxRetries: 0 } });
    await h.client.chat(chatRequest());
    h.sim.faults.inject({ kind: 'status', status: 500 });
    await failureOf(() => h.client.chat(chatRequest()));

    const warnings = h.logs.map((line) => JSON.parse(line) as Line).filter((l) => l.level === 40);
    expect(warnings).toEqual([
      expect.objectContaining({ msg: 'upstream API key disabled', keyFingerprint: keyFingerprint(BAD_KEY), reason: 'unauthorized' }),
      expect.objectContaining({ msg: 'upstream circuit OPEN', circuit: 'OPEN' }),
    ]);
  });
});
