/**
 * `npm run bench:events`: what turning one subscription event into its GraphQL result costs,
 * in-process: graphql-js's `subscribe` (a full `execute` per event, the reference) against
 * `subscribeEvents` (src/graphql/subscription-events.ts), on a schema of the gateway's chunk
 * shape with the selection `bench:stream` uses. Both read the same source (an async
 * generator of payloads), so the difference is the mapping. Rounds alternate the two, after
 * warm-up rounds that are not counted; prints CPU µs per event for each, the ratio per
 * round and the median ratio. No sockets, no child processes; about 5 seconds.
 *
 *   npm run bench:events
 *   npm run bench:events -- --events=5000    # smaller rounds
 */
import { cpus } from 'node:os';
import { buildSchema, parse, subscribe, type ExecutionArgs } from 'graphql';
import { subscribeEvents } from '../src/graphql/subscription-events';
import { writeResults } from './lib/results';
import { median } from './lib/stats';
import { renderTable } from './lib/table';

const WARMUP_ROUNDS = 4;
const ROUNDS = 8;

/** The gateway's `CompletionChunk` and `completionStream` field, reduced to what the selection reads. */
const schema = buildSchema(`
  enum FinishReason { STOP LENGTH }
  input CompletionInput { prompt: String!, thinking: Boolean, maxTokens: Int, cache: String }
  type CompletionChunk { completionId: ID! index: Int! delta: String! reasoningDelta: String finishReason: FinishReason cached: Boolean! }
  type Query { ok: Boolean }
  type Subscription { completionStream(input: CompletionInput!): CompletionChunk! }
`);
const document = parse(`subscription ($input: CompletionInput!) {
  completionStream(input: $input) { index delta reasoningDelta finishReason cached }
}`);
const variableValues = { input: { prompt: 'bench', thinking: false, maxTokens: 4, cache: 'BYPASS' } };

function eventsArg(): number {
  const arg = process.argv.slice(2).find((a) => a.startsWith('--events='));
  const n = arg ? Number(arg.slice('--events='.length)) : 20_000;
  if (!Number.isInteger(n) || n < 100 || n > 1_000_000) throw new Error('--events must be an integer from 100 to 1000000');
  return n;
}

async function cpuPerEvent(mapping: (args: ExecutionArgs) => Promise<unknown>, events: number): Promise<number> {
  const field = schema.getSubscriptionType()!.getFields().completionStream;
  field.subscribe = async function* () {
    for (let index = 0; index < events; index++) yield { index };
  };
  field.resolve = (payload: { index: number }) => ({
    completionId: 'bench',
    index: payload.index,
    delta: 'token ',
    reasoningDelta: null,
    finishReason: payload.index === events - 1 ? 'STOP' : null,
    cached: false,
  });
  const stream = (await mapping({ schema, document, variableValues, contextValue: {} })) as AsyncIterable<unknown>;
  const start = process.cpuUsage();
  let seen = 0;
  for await (const _ of stream) seen += 1;
  const used = process.cpuUsage(start);
  if (seen !== events) throw new Error(`expected ${events} events, got ${seen}`);
  return (used.user + used.system) / events;
}

async function main(): Promise<void> {
  const events = eventsArg();
  const ways = { reference: subscribe as (args: ExecutionArgs) => Promise<unknown>, gateway: subscribeEvents as (args: ExecutionArgs) => Promise<unknown> };
  for (let round = 0; round < WARMUP_ROUNDS; round++) for (const way of Object.values(ways)) await cpuPerEvent(way, events);
  const rows: Array<{ round: number; reference: number; gateway: number; ratio: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so drift on a shared machine hits both alike.
    const order = round % 2 === 0 ? (['reference', 'gateway'] as const) : (['gateway', 'reference'] as const);
    const result = { reference: 0, gateway: 0 };
    for (const way of order) result[way] = await cpuPerEvent(ways[way], events);
    rows.push({ round: round + 1, ...result, ratio: result.gateway / result.reference });
  }
  const medianRatio = median(rows.map((row) => row.ratio));
  process.stdout.write(
    [
      renderTable(
        `CPU µs per subscription event (${events.toLocaleString('en-US')} events a round, after ${WARMUP_ROUNDS} warm-up rounds of each)`,
        ['round', 'graphql-js subscribe (reference)', 'subscribeEvents', 'ratio'],
        rows.map((row) => [row.round, row.reference.toFixed(2), row.gateway.toFixed(2), `${row.ratio.toFixed(2)}×`]),
      ),
      `median ratio: ${medianRatio.toFixed(2)}× the reference's CPU per event`,
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}.`,
      `results: ${writeResults('event-mapping', { events, rows, medianRatio })}`,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
