import { createHash } from 'node:crypto';
import { outcomeOf, postGraphQL, send } from '../http';
import { sumByLabel } from '../prometheus';
import type { Service } from '../proc';
import { inParallel, linesAt, logDelta, logSnapshot, metricsUrlOf, originOf, simCalls, simCounters, sleep, tally } from './support';
import type { Probe, ProbeContext, ProbeRow } from './types';

/**
 * How ordinary client mistakes and departures are answered and counted: a request that is
 * the client's fault should get a client error code, not INTERNAL_SERVER_ERROR, an
 * error-level log line and an error metric (which page an operator); and production
 * should not describe the schema to a client that guesses field names.
 */

const excerpt = (text: string | undefined, max = 90): string =>
  text === undefined ? '-' : text.length > max ? `${text.slice(0, max)}…` : text;

/** One small POST, with the log lines it caused. */
async function postAndCount(ctx: ProbeContext, body: unknown) {
  const gateway = await ctx.gateway();
  const logsBefore = logSnapshot(gateway);
  const { value: answer, cost } = await ctx.observe(gateway, () => postGraphQL(originOf(gateway), JSON.stringify(body), { timeoutMs: 10_000 }));
  await sleep(100); // the log line of the operation is written after the response
  return { answer, cost, logs: logDelta(gateway, logsBefore) };
}

export const apqMismatch: Probe = {
  name: 'apq-mismatch',
  ownGateway: false,
  timeoutMs: () => 15_000,
  async run(ctx): Promise<ProbeRow[]> {
    const query = '{ __typename }';
    const wrongHash = createHash('sha256').update(`not ${query}`).digest('hex');
    const { answer, cost, logs } = await postAndCount(ctx, { query, extensions: { persistedQuery: { version: 1, sha256Hash: wrongHash } } });
    return [
      {
        probe: this.name,
        attack: 'query + persistedQuery { version: 1, sha256Hash: <64 hex, not the query\'s> }',
        outcome: outcomeOf(answer),
        cost,
        harm: `"${excerpt(answer.messages[0])}"; error log lines +${linesAt(logs, 'error')}`,
        details: { messages: answer.messages, logs },
      },
    ];
  },
};

export const entitiesUnknownType: Probe = {
  name: 'entities-unknown-type',
  ownGateway: false,
  timeoutMs: () => 15_000,
  async run(ctx): Promise<ProbeRow[]> {
    const { answer, cost, logs } = await postAndCount(ctx, {
      query: 'query ($r: [_Any!]!) { _entities(representations: $r) { __typename } }',
      variables: { r: [{ __typename: 'Nope', id: 'x' }] },
    });
    return [
      {
        probe: this.name,
        attack: '_entities with { __typename: "Nope", id: "x" }',
        outcome: outcomeOf(answer),
        cost,
        harm: `"${excerpt(answer.messages[0])}"; error log lines +${linesAt(logs, 'error')}`,
        details: { messages: answer.messages, logs },
      },
    ];
  },
};

export const suggestions: Probe = {
  name: 'suggestions',
  ownGateway: false,
  timeoutMs: () => 15_000,
  async run(ctx): Promise<ProbeRow[]> {
    const { answer, cost } = await postAndCount(ctx, { query: '{ upstreem { mode } }' });
    const suggests = answer.messages.some((m) => m.includes('Did you mean'));
    return [
      {
        probe: this.name,
        attack: '{ upstreem { mode } } in production (introspection off)',
        outcome: outcomeOf(answer),
        cost,
        harm: `"Did you mean" in the message: ${suggests ? 'yes' : 'no'} ("${excerpt(answer.messages[0])}")`,
        details: { messages: answer.messages },
      },
    ];
  },
};

/** `upstream { inFlight queued }` until both are 0 (at most `timeoutMs`): the burst has drained. */
async function drained(gateway: Service, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const answer = await postGraphQL(originOf(gateway), JSON.stringify({ query: '{ upstream { inFlight queued } }' }), { timeoutMs: 5000 });
    const upstream = answer.body ? (JSON.parse(answer.body) as { data?: { upstream?: { inFlight: number; queued: number } } }).data?.upstream : undefined;
    if (upstream && upstream.inFlight === 0 && upstream.queued === 0) return true;
    await sleep(100);
  }
  return false;
}

async function errorTypes(gateway: Service): Promise<Record<string, number>> {
  const scrape = await send(metricsUrlOf(gateway), { timeoutMs: 10_000, keepBodyBytes: 64 * 1024 * 1024 });
  return scrape.body ? sumByLabel(scrape.body, 'graphql_server_errors_total', 'error_type') : {};
}

export const clientAbortNoise: Probe = {
  name: 'client-abort-noise',
  ownGateway: false,
  timeoutMs: () => 30_000,
  async run(ctx): Promise<ProbeRow[]> {
    const { abortRequests: n, abortAfterMs, abortSimLatencyMs } = ctx.limits;
    const gateway = await ctx.gateway();
    const origin = originOf(gateway);
    await ctx.sim.ask({ cmd: 'setLatency', latencyMs: abortSimLatencyMs });
    ctx.defer(() => ctx.sim.ask({ cmd: 'setLatency', latencyMs: ctx.simLatencyMs }));
    const typesBefore = await errorTypes(gateway);
    const simBefore = await simCounters(ctx.sim);
    const logsBefore = logSnapshot(gateway);
    const tag = Date.now().toString(36);
    ctx.log(`${n} concurrent completions (simulator latency ${abortSimLatencyMs} ms), each client aborts after ${abortAfterMs} ms`);

    const { value, cost } = await ctx.observe(gateway, async () => {
      const answers = await inParallel(n, n, (i) => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), abortAfterMs);
        const body = JSON.stringify({
          query: 'query ($p: String!) { completion(input: { prompt: $p, thinking: false }) { id } }',
          variables: { p: `abort ${tag} ${i}` },
        });
        return postGraphQL(origin, body, { signal: controller.signal, timeoutMs: 10_000 }).finally(() => clearTimeout(timer));
      });
      return { clients: tally(answers.map(outcomeOf)), drained: await drained(gateway, 5000) };
    });
    await sleep(200); // operation log lines are written as the aborted operations end
    const logs = logDelta(gateway, logsBefore);
    const typesAfter = await errorTypes(gateway);
    const types = Object.fromEntries(
      Object.entries(typesAfter)
        .map(([type, count]) => [type, count - (typesBefore[type] ?? 0)] as const)
        .filter(([, grown]) => grown > 0),
    );
    const chatCalls = simCalls(await simCounters(ctx.sim), '/chat/completions') - simCalls(simBefore, '/chat/completions');
    const byLevel = ['error', 'warn', 'info'].map((level) => `${level} +${linesAt(logs, level)}`).join(', ');
    const errorMessages = Object.entries(logs)
      .filter(([key]) => key.startsWith('error: '))
      .map(([key, count]) => `"${key.slice('error: '.length)}" ×${count}`);
    return [
      {
        probe: this.name,
        attack: `${n} concurrent completions, clients abort after ${abortAfterMs} ms (upstream ${abortSimLatencyMs} ms)`,
        outcome: `clients: ${value.clients}`,
        cost,
        harm:
          `log lines ${byLevel}${errorMessages.length ? ` (${errorMessages.join(', ')})` : ''}; ` +
          `graphql_server_errors_total ${Object.entries(types).map(([t, c]) => `${t} +${c}`).join(', ') || '+0'}; ${chatCalls} upstream calls`,
        details: { clients: value.clients, drained: value.drained, logs, errorTypes: types, simulatorChatRequests: chatCalls },
      },
    ];
  },
};
