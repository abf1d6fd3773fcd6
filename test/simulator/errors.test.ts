import { startSimulator } from '../../src/simulator';
import { Agent } from 'undici';
import { KEY, TRACE_ID, call, chatBody, useSimulator } from './helpers';

interface ErrorJson {
  error: { message: string; type: string; param: string | null; code: string };
}

const UUID_IN = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

describe('simulator error answers', () => {
  const { call: send } = useSimulator({ apiKeys: [KEY, 'sk-broke-key-9999'], exhaustedKeys: ['sk-broke-key-9999'] });

  const expectError = async (
    path: string,
    init: Parameters<typeof send>[1],
    status: number,
    message: string | RegExp,
  ): Promise<ErrorJson['error']> => {
    const res = await send(path, init);
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['x-ds-trace-id']).toMatch(TRACE_ID);
    const json = JSON.parse(res.text) as ErrorJson;
    expect(Object.keys(json)).toEqual(['error']);
    expect(Object.keys(json.error)).toEqual(['message', 'type', 'param', 'code']);
    if (typeof message === 'string') expect(json.error.message).toBe(message);
    else expect(json.error.message).toMatch(message);
    return json.error;
  };

  it('answers 401 for an unknown key, with the documented body', async () => {
    const res = await send('/chat/completions', { body: chatBody('hi'), key: 'sk-wrong-key-0042' });
    expect(res.status).toBe(401);
    expect(res.headers['x-ds-trace-id']).toMatch(TRACE_ID);
    expect(res.text).toMatch(
      new RegExp(
        `^\\{"error":\\{"message":"Authentication Fails, Your api key: \\*\\*\\*\\*0042 is invalid \\(request_id: ${UUID_IN}\\)","type":"authentication_error","param":null,"code":"invalid_request_error"\\}\\}$`,
      ),
    );
  });

  it('answers 401 without an Authorization header', async () => {
    const error = await expectError('/models', { key: null }, 401, /^Authentication Fails/);
    expect(error.type).toBe('authentication_error');
  });

  it('answers 402 for an exhausted key, with the documented body', async () => {
    const res = await send('/chat/completions', { body: chatBody('hi'), key: 'sk-broke-key-9999' });
    expect(res.status).toBe(402);
    expect(res.text).toBe('{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}');
  });

  it('answers 404 with an error body for an unknown path', async () => {
    const error = await expectError('/v2/chat/completions', { body: chatBody('hi') }, 404, /Not Found/);
    expect(error.code).toBe('not_found');
  });

  it('answers 405 for a known path with the wrong method', async () => {
    await expectError('/models', { method: 'POST', body: {} }, 405, /Method Not Allowed/);
  });

  it('answers 400 Model Not Exist for an unknown model', async () => {
    const error = await expectError('/chat/completions', { body: chatBody('hi', { model: 'gpt-4o' }) }, 400, 'Model Not Exist');
    expect(error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_request_error', param: 'model' });
  });

  it('answers 400 for the retired deepseek-chat and deepseek-reasoner', async () => {
    for (const model of ['deepseek-chat', 'deepseek-reasoner']) {
      await expectError('/chat/completions', { body: chatBody('hi', { model }) }, 400, /retired/);
    }
  });

  it.each([
    ['max_tokens 0', { max_tokens: 0 }, 'Invalid max_tokens value, the valid range of max_tokens is [1, 393216]'],
    ['max_tokens too big', { max_tokens: 393217 }, 'Invalid max_tokens value, the valid range of max_tokens is [1, 393216]'],
    ['temperature 2.5', { temperature: 2.5 }, /temperature/],
    ['top_p 0', { top_p: 0 }, /top_p/],
    ['17 stop strings', { stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, /stop/],
    ['stream_options without stream', { stream_options: { include_usage: true } }, /stream_options/],
    ['json_object without the word json', { response_format: { type: 'json_object' } }, /json/],
    ['an unknown reasoning_effort', { reasoning_effort: 'extreme' }, /reasoning_effort/],
    ['a malformed thinking', { thinking: { type: 'on' } }, /thinking/],
    ['a bad user_id', { user_id: 'has spaces' }, /Invalid 'user_id'/],
    ['empty messages', { messages: [] }, /messages/],
    ['no messages', { messages: undefined }, /missing field `messages`/],
  ])('answers 400 for %s', async (_name, extra, message) => {
    await expectError('/chat/completions', { body: chatBody('hi', extra) }, 400, message);
  });

  it('accepts the mapped reasoning_effort aliases', async () => {
    for (const effort of ['low', 'high', 'max', 'minimal', 'medium', 'xhigh', 'ultra']) {
      expect((await send('/chat/completions', { body: chatBody('hi', { reasoning_effort: effort }) })).status).toBe(200);
    }
  });

  it('answers 400 for a body that is not JSON', async () => {
    await expectError('/chat/completions', { body: '{"model":' }, 400, /^Failed to parse the request body as JSON/);
    await expectError('/chat/completions', { method: 'POST' }, 400, /^Failed to parse the request body as JSON/);
  });

  it('answers 400 when a tool-call turn lacks reasoning_content in thinking mode', async () => {
    const messages = [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_00_x', type: 'function', function: { name: 'w', arguments: '{}' } }] },
      { role: 'tool', content: 'sunny', tool_call_id: 'call_00_x' },
    ];
    await expectError('/chat/completions', { body: { model: 'deepseek-flash', messages } }, 400, /reasoning_content/);
    const ok = await send('/chat/completions', { body: { model: 'deepseek-flash', messages, thinking: { type: 'disabled' } } });
    expect(ok.status).toBe(200);
  });
});

describe('retiredModelStatus', () => {
  it('can answer 404 for retired models', async () => {
    const sim = await startSimulator({ retiredModelStatus: 404 });
    const agent = new Agent();
    try {
      const res = await call(sim, agent, '/chat/completions', { body: chatBody('hi', { model: 'deepseek-reasoner' }) });
      expect(res.status).toBe(404);
      expect((JSON.parse(res.text) as ErrorJson).error.message).toMatch(/deepseek-reasoner.*retired/);
    } finally {
      await agent.close();
      await sim.close();
    }
  });
});
