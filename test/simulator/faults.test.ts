import { request as httpRequest } from 'node:http';
import { Agent, request } from 'undici';
import { startSimulator, type Fault } from '../../src/simulator';
import { waitFor } from '../helpers/wait';
import { KEY, call, chatBody, sseData, useSimulator } from './helpers';

describe('simulator fault injection', () => {
  const { sim, agent, call: send } = useSimulator();
  const chat = (extra: Record<string, unknown> = {}) => send('/chat/completions', { body: chatBody('fault?', extra) });

  it('answers an injected status with the documented body and Retry-After', async () => {
    sim().faults.inject({ kind: 'status', status: 429, retryAfterSeconds: 3 });
    const res = await chat();
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('3');
    expect(JSON.parse(res.text)).toEqual({
      error: { message: 'Rate Limit Reached', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
    });
    expect(sim().requests.at(-1)!.status).toBe(429);
    expect((await chat()).status).toBe(200);
  });

  it.each([
    [500, 'Server Error'],
    [503, 'Server Overloaded'],
    [422, 'Invalid Parameters'],
    [402, 'Insufficient Balance'],
  ])('uses the documented message for %i', async (status, message) => {
    sim().faults.inject({ kind: 'status', status });
    const res = await chat();
    expect(res.status).toBe(status);
    expect(res.headers['retry-after']).toBeUndefined();
    expect((JSON.parse(res.text) as { error: { message: string } }).error.message).toBe(message);
  });

  it('uses a given message and the caller key in an injected 401', async () => {
    sim().faults.inject({ kind: 'status', status: 401 });
    expect((await chat()).text).toContain(`****${KEY.slice(-4)} is invalid`);
    sim().faults.inject({ kind: 'status', status: 400, message: 'custom reason' });
    expect((await chat()).text).toContain('"message":"custom reason"');
  });

  it('queues faults FIFO with counts and path filters', async () => {
    const faults = sim().faults;
    faults.inject({ kind: 'status', status: 500 }, { count: 2 });
    faults.inject({ kind: 'status', status: 503 }, { path: '/models' });
    expect(faults.pending).toBe(3);
    expect((await send('/models')).status).toBe(500);
    expect((await chat()).status).toBe(500);
    expect((await chat()).status).toBe(200); // the 503 waits for /models
    expect(faults.pending).toBe(1);
    expect((await send('/models')).status).toBe(503);
    expect(faults.pending).toBe(0);
    faults.inject({ kind: 'status', status: 500 });
    faults.clear();
    expect(faults.pending).toBe(0);
    expect((await chat()).status).toBe(200);
  });

  it('resets the connection without a response (ECONNRESET)', async () => {
    sim().faults.inject({ kind: 'reset' });
    await expect(chat()).rejects.toMatchObject({ code: expect.stringMatching(/ECONNRESET|UND_ERR_SOCKET/) as string });
    sim().faults.inject({ kind: 'reset' });
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const req = httpRequest(`${sim().url}/models`, { headers: { authorization: `Bearer ${KEY}` }, agent: false });
      req.on('error', resolve);
      req.on('response', () => resolve(new Error('unexpected response')));
      req.end();
    });
    expect(error.code).toBe('ECONNRESET');
    expect(sim().requests.at(-1)!.status).toBeUndefined();
    await waitFor(() => sim().counters.inFlight === 0);
  });

  it('hangs until the client gives up, then releases the request', async () => {
    sim().faults.inject({ kind: 'hang' });
    await expect(send('/chat/completions', { body: chatBody('hang'), headersTimeout: 150 })).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });
    await waitFor(() => sim().counters.inFlight === 0);
    expect((await chat()).status).toBe(200);
  });

  it('sends blank lines, then a valid JSON answer', async () => {
    sim().faults.inject({ kind: 'blank-lines', count: 3, intervalMs: 10 });
    const res = await chat();
    expect(res.status).toBe(200);
    expect(res.text.startsWith('\n\n\n{')).toBe(true);
    expect(JSON.parse(res.text)).toMatchObject({ object: 'chat.completion' });
  });

  it('sends keep-alive comments on a stream, then the stream', async () => {
    sim().faults.inject({ kind: 'blank-lines', count: 2, intervalMs: 10 });
    const res = await chat({ stream: true });
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.text.startsWith(': keep-alive\n\n: keep-alive\n\ndata: {')).toBe(true);
    expect(res.text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('sends blank lines forever until the client leaves', async () => {
    sim().faults.inject({ kind: 'blank-lines', intervalMs: 10 });
    const controller = new AbortController();
    const res = await request(`${sim().url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify(chatBody('forever')),
      dispatcher: agent(),
      signal: controller.signal,
    });
    expect(res.statusCode).toBe(200);
    let received = '';
    for await (const chunk of res.body) {
      received += String(chunk);
      if (received.length >= 5) break; // breaking out destroys the body
    }
    expect(received).toMatch(/^\n+$/);
    controller.abort();
    await waitFor(() => sim().counters.inFlight === 0);
  });

  it('truncates a stream after N data chunks, without finish or [DONE]', async () => {
    sim().faults.inject({ kind: 'truncate', afterChunks: 3 });
    const res = await chat({ stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    const data = sseData(res.text);
    expect(data).toHaveLength(3);
    expect(data).not.toContain('[DONE]');
    const chunks = data.map((d) => JSON.parse(d) as { choices: Array<{ finish_reason: string | null }> });
    expect(chunks.every((c) => c.choices[0].finish_reason === null)).toBe(true);

    sim().faults.inject({ kind: 'truncate' });
    expect(sseData((await chat({ stream: true })).text)).toHaveLength(1);
  });

  it('truncates a JSON answer to half the body', async () => {
    sim().faults.inject({ kind: 'truncate' });
    const res = await chat();
    expect(res.status).toBe(200);
    expect(res.text.startsWith('{"id":')).toBe(true);
    expect(() => JSON.parse(res.text) as unknown).toThrow();
  });

  it('delays a response by the given ms', async () => {
    sim().faults.inject({ kind: 'delay', ms: 120 });
    const started = Date.now();
    expect((await chat()).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(115); // a lower bound: a loaded machine only waits longer
  });

  it('draws random faults reproducibly from a seed', async () => {
    const mix: Array<{ probability: number; fault: Fault }> = [
      { probability: 0.3, fault: { kind: 'status', status: 503 } },
      { probability: 0.3, fault: { kind: 'status', status: 500 } },
    ];
    const run = async (): Promise<number[]> => {
      sim().faults.setRandom(mix, 42);
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await send('/models')).status);
      return statuses;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(new Set(first)).toEqual(new Set([200, 500, 503]));
    sim().faults.clear();
    expect((await send('/models')).status).toBe(200);
  });
});

describe('close() with requests still open', () => {
  it('destroys hung and keep-alive-only requests and resolves', async () => {
    const sim = await startSimulator();
    const agent = new Agent();
    sim.faults.inject({ kind: 'hang' });
    sim.faults.inject({ kind: 'blank-lines', intervalMs: 10 });
    const outcome = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'answered', (error: unknown) => error);
    const hung = outcome(call(sim, agent, '/chat/completions', { body: chatBody('hang') }));
    const blank = outcome(call(sim, agent, '/chat/completions', { body: chatBody('blank') }));
    await waitFor(() => sim.counters.inFlight === 2);
    await sim.close();
    expect(await hung).toBeInstanceOf(Error);
    expect(await blank).toBeInstanceOf(Error);
    expect(sim.counters.inFlight).toBe(0);
    await agent.close();
  });
});
