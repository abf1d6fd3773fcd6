import { randomBytes } from 'node:crypto';
import { outcomeOf, postGraphQL } from '../http';
import type { WindowCost } from '../observe';
import { mb, originOf, simCalls, simCounters } from './support';
import type { Probe, ProbeContext, ProbeRow } from './types';

/**
 * One request whose document or variables are cheap to send and expensive to handle:
 * parsing, validation or execution time (a blocked event loop for everyone else), or
 * memory. Each is one POST measured on its own. The big ones get a gateway of their own:
 * the heap they grow stays, and would be the next probe's "RSS before".
 */

const seconds = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);

/** "CPU 1.23 s, /healthz blocked up to 4.56 s": the part of a harm every probe here shares. */
function costFigures(cost: WindowCost): string {
  return `CPU ${seconds(cost.cpuMs)}, /healthz max ${seconds(cost.healthz.maxMs)}`;
}

async function postOnce(ctx: ProbeContext, body: string) {
  const gateway = await ctx.gateway();
  return ctx.observe(gateway, () => postGraphQL(originOf(gateway), body, { timeoutMs: 120_000, signal: ctx.signal }));
}

export const typenameAliases: Probe = {
  name: 'typename-aliases',
  ownGateway: true,
  timeoutMs: () => 90_000,
  async run(ctx): Promise<ProbeRow[]> {
    const n = ctx.limits.typenameAliases;
    const fields = Array.from({ length: n }, (_, i) => `a${i}: __typename`);
    const body = JSON.stringify({ query: `{ ${fields.join(' ')} }` });
    ctx.log(`one POST with ${n.toLocaleString('en-US')} aliased __typename (${mb(body.length)})`);
    const { value: answer, cost } = await postOnce(ctx, body);
    return [
      {
        probe: this.name,
        attack: `{ a0: __typename … } ×${n.toLocaleString('en-US')} (${mb(body.length)})`,
        outcome: outcomeOf(answer),
        cost,
        harm: costFigures(cost),
        details: { bodyBytes: body.length, messages: answer.messages.slice(0, 3).map((m) => m.slice(0, 300)) },
      },
    ];
  },
};

export const entities60k: Probe = {
  name: 'entities-60k',
  ownGateway: true,
  timeoutMs: () => 60_000,
  async run(ctx): Promise<ProbeRow[]> {
    const n = ctx.limits.entities;
    // Well-formed completion ids (cmpl_v1_ + 43 base64url characters), none of them stored.
    const representations = Array.from({ length: n }, () => ({ __typename: 'Completion', id: `cmpl_v1_${randomBytes(32).toString('base64url')}` }));
    const body = JSON.stringify({
      query: 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Completion { id } } }',
      variables: { r: representations },
    });
    ctx.log(`_entities with ${n.toLocaleString('en-US')} representations (${mb(body.length)})`);
    const { value: answer, cost } = await postOnce(ctx, body);
    return [
      {
        probe: this.name,
        attack: `_entities, ${n.toLocaleString('en-US')} Completion representations (${mb(body.length)})`,
        outcome: `${outcomeOf(answer)} (${mb(answer.bytes)})`,
        cost,
        harm: costFigures(cost),
        details: { bodyBytes: body.length, answerBytes: answer.bytes, messages: answer.messages.slice(0, 3) },
      },
    ];
  },
};

export const repeatedFields: Probe = {
  name: 'repeated-fields',
  ownGateway: false,
  timeoutMs: () => 60_000,
  async run(ctx): Promise<ProbeRow[]> {
    const rows: ProbeRow[] = [];
    for (const n of ctx.limits.repeatedFields) {
      if (ctx.signal.aborted) break;
      const body = JSON.stringify({ query: `{ upstream { ${'mode '.repeat(n)}} }` });
      ctx.log(`{ upstream { mode ×${n.toLocaleString('en-US')} } }`);
      const { value: answer, cost } = await postOnce(ctx, body);
      rows.push({
        probe: `${this.name} ×${n.toLocaleString('en-US')}`,
        attack: `{ upstream { mode mode … } }, ${n.toLocaleString('en-US')} times (${mb(body.length)})`,
        outcome: outcomeOf(answer),
        cost,
        harm: costFigures(cost),
        details: { repetitions: n, bodyBytes: body.length, messages: answer.messages.slice(0, 3).map((m) => m.slice(0, 300)) },
      });
    }
    return rows;
  },
};

export const messages200k: Probe = {
  name: 'messages-200k',
  ownGateway: true,
  timeoutMs: () => 60_000,
  async run(ctx): Promise<ProbeRow[]> {
    const n = ctx.limits.messages;
    const body = JSON.stringify({
      query: 'query ($m: [MessageInput!]!) { completion(input: { messages: $m, thinking: false, cache: BYPASS }) { id cached } }',
      variables: { m: Array.from({ length: n }, () => ({ role: 'USER', content: 'x' })) },
    });
    ctx.log(`one completion with ${n.toLocaleString('en-US')} messages (${mb(body.length)})`);
    const before = await simCounters(ctx.sim);
    const { value: answer, cost } = await postOnce(ctx, body);
    const chatCalls = simCalls(await simCounters(ctx.sim), '/chat/completions') - simCalls(before, '/chat/completions');
    return [
      {
        probe: this.name,
        attack: `completion with ${n.toLocaleString('en-US')} messages, cache BYPASS (${mb(body.length)})`,
        outcome: outcomeOf(answer),
        cost,
        harm: `${costFigures(cost)}, RSS peak ${cost.rssPeakMb?.toFixed(0) ?? '-'} MB; DeepSeek called ${chatCalls}×`,
        details: { bodyBytes: body.length, simulatorChatRequests: chatCalls, messages: answer.messages.slice(0, 3) },
      },
    ];
  },
};

/**
 * Many requests at once, each with a prompt near HTTP_BODY_LIMIT_BYTES, held by a slow
 * upstream: what their bodies cost together. Once with HTTP_MAX_BODY_BYTES_IN_FLIGHT at 0
 * (no bound, as before it existed), once at its default; each on a gateway of its own.
 */
export const bigBodies: Probe = {
  name: 'big-bodies',
  ownGateway: true,
  timeoutMs: () => 120_000,
  async run(ctx): Promise<ProbeRow[]> {
    const { bigBodies: n, bigBodyBytes } = ctx.limits;
    const tag = Date.now().toString(36);
    const filler = 'lorem ipsum '.repeat(Math.ceil(bigBodyBytes / 12)).slice(0, bigBodyBytes);
    const bodies = Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        query: 'query ($p: String!) { completion(input: { prompt: $p, thinking: false, cache: BYPASS }) { id } }',
        variables: { p: `${tag} ${i} ${filler}` },
      }),
    );
    // Held upstream long enough for every body to arrive while the first calls wait.
    await ctx.sim.ask({ cmd: 'setLatency', latencyMs: 3_000 });
    ctx.defer(() => ctx.sim.ask({ cmd: 'setLatency', latencyMs: ctx.simLatencyMs }));
    const rows: ProbeRow[] = [];
    for (const bound of ['0', undefined]) {
      const gateway = await ctx.startGateway(bound === undefined ? {} : { HTTP_MAX_BODY_BYTES_IN_FLIGHT: bound });
      const label = bound === undefined ? 'HTTP_MAX_BODY_BYTES_IN_FLIGHT default (32 MiB)' : 'HTTP_MAX_BODY_BYTES_IN_FLIGHT=0 (no bound)';
      ctx.log(`${n} concurrent completions of ${mb(bodies[0]!.length)} each (${label})`);
      const before = await simCounters(ctx.sim);
      const { value: answers, cost } = await ctx.observe(gateway, () =>
        Promise.all(bodies.map((body) => postGraphQL(originOf(gateway), body, { timeoutMs: 60_000, signal: ctx.signal }))),
      );
      const chatCalls = simCalls(await simCounters(ctx.sim), '/chat/completions') - simCalls(before, '/chat/completions');
      const outcomes = new Map<string, number>();
      for (const answer of answers) outcomes.set(outcomeOf(answer), (outcomes.get(outcomeOf(answer)) ?? 0) + 1);
      rows.push({
        probe: this.name,
        attack: `${n} concurrent completions with a ${mb(bigBodyBytes)} prompt, upstream 3 s; ${label}`,
        outcome: [...outcomes].map(([outcome, count]) => `${outcome} ×${count}`).join(', '),
        cost,
        harm: `${costFigures(cost)}, RSS peak ${cost.rssPeakMb?.toFixed(0) ?? '-'} MB; DeepSeek called ${chatCalls}×`,
        details: { bodyBytes: bodies[0]!.length, outcomes: Object.fromEntries(outcomes), simulatorChatRequests: chatCalls },
      });
    }
    return rows;
  },
};
