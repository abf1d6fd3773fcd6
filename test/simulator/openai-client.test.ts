import OpenAI from 'openai';
import { simulatedAnswer, startSimulator, type Simulator } from '../../src/simulator';

const KEY = 'sk-openai-client-test-1234';

describe('the official openai client against the simulator', () => {
  let sim: Simulator;
  let client: OpenAI;
  beforeAll(async () => {
    sim = await startSimulator({ apiKeys: [KEY], latencyMs: 30, keepAliveIntervalMs: 10, tokenDelayMs: 1 });
    client = new OpenAI({ apiKey: KEY, baseURL: sim.url, maxRetries: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });

  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'What is the simulator?' },
  ];

  it('creates a chat completion (leading keep-alive newlines tolerated)', async () => {
    const completion = await client.chat.completions.create({ model: 'deepseek-flash', messages });
    expect(completion.choices[0].message.content).toBe(simulatedAnswer({ model: 'deepseek-flash', messages }).content);
    expect(completion.choices[0].finish_reason).toBe('stop');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('streams a completion whose joined deltas equal the non-stream content', async () => {
    const stream = await client.chat.completions.create({
      model: 'deepseek-flash',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(content).toBe(simulatedAnswer({ model: 'deepseek-flash', messages }).content);
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('raises AuthenticationError for a wrong key', async () => {
    const wrong = new OpenAI({ apiKey: 'sk-not-the-right-one-0000', baseURL: sim.url, maxRetries: 0 });
    const error: unknown = await wrong.chat.completions.create({ model: 'deepseek-flash', messages }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    expect((error as Error).message).toContain('Authentication Fails');
  });

  it('raises BadRequestError for an unknown model', async () => {
    const error: unknown = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toContain('Model Not Exist');
  });

  it('lists the models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['deepseek-flash', 'deepseek-v4-pro']);
  });
});
