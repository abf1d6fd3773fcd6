import { outcomeOf, postGraphQL, send, type HttpAnswer } from '../http';
import { round } from '../stats';
import { memoryMb } from '../procfs';
import { RawGraphQLWs } from '../ws-raw';
import { inParallel, linesAt, logDelta, logSnapshot, mb, metricsUrlOf, originOf, tally, wsUrlOf } from './support';
import type { Probe, ProbeContext, ProbeRow } from './types';
import type { Service } from '../proc';

/**
 * Operation names a client chooses end up as metric label values: long ones make every
 * later `GET /metrics` scrape huge (or fail outright), and the series stay for the life of
 * the process, so each of these probes gets a gateway of its own.
 */

/** A distinct valid GraphQL name of exactly `length` characters. */
function longName(i: number, length: number): string {
  const prefix = `Probe${i}_`;
  return prefix + 'n'.repeat(Math.max(0, length - prefix.length));
}

/** Scrapes /metrics `count` times (one measured window): status, time and size of each. */
async function scrapes(ctx: ProbeContext, gateway: Service, count: number) {
  return ctx.observe(gateway, async () => {
    const answers: HttpAnswer[] = [];
    for (let i = 0; i < count && !ctx.signal.aborted; i += 1) {
      answers.push(await send(metricsUrlOf(gateway), { timeoutMs: 60_000, keepBodyBytes: 4096, signal: ctx.signal }));
    }
    return answers;
  });
}

function scrapeFigures(answers: HttpAnswer[]): string {
  return answers.map((a) => `${a.status || a.error} ${mb(a.bytes)} in ${(a.ms / 1000).toFixed(1)} s`).join('; ');
}

const rssMb = (gateway: Service): string => memoryMb(gateway.pid)?.rss.toFixed(0) ?? '-';

/** "RSS 150 MB fresh → 380 after the names → peak 530 during scrapes". */
function rssFigures(fresh: string, afterNames: string, peak: number | undefined): string {
  return `RSS ${fresh} MB fresh → ${afterNames} after the names → peak ${peak?.toFixed(0) ?? '-'} during scrapes`;
}

export const metricsWsOpName: Probe = {
  name: 'metrics-ws-opname',
  ownGateway: true,
  timeoutMs: () => 90_000,
  async run(ctx): Promise<ProbeRow[]> {
    const { wsOpNames, wsOpNameBytes, wsMetricsScrapes: metricsScrapes } = ctx.limits;
    const gateway = await ctx.gateway();
    const fresh = rssMb(gateway);
    const ws = await RawGraphQLWs.connect(wsUrlOf(gateway));
    ctx.defer(() => ws.close());
    ctx.log(`${wsOpNames} subscribe messages with ${mb(wsOpNameBytes)} operation names`);
    // The document names its operation with the long name, so the name is the one the
    // document resolves to (a name matching no operation in the document is refused).
    // All subscribe to the same short completion: one upstream stream, the rest cached.
    for (let i = 0; i < wsOpNames; i += 1) {
      const name = longName(i, wsOpNameBytes);
      await ws.subscribe(String(i), {
        operationName: name,
        query: `subscription ${name} { completionStream(input: { prompt: "probe", thinking: false }) { delta } }`,
      });
    }
    const settled = await ws.settled(20_000);
    const ends = [...ws.subscriptions.values()].map((s) => (s.codes.length ? s.codes.join('+') : (s.end ?? 'unfinished')));
    ws.close();

    const afterNames = rssMb(gateway);
    const logsBefore = logSnapshot(gateway);
    const { value: answers, cost } = await scrapes(ctx, gateway, metricsScrapes);
    const logs = logDelta(gateway, logsBefore);
    return [
      {
        probe: this.name,
        attack: `${wsOpNames} WS subscribes, ${mb(wsOpNameBytes)} operationName each; ${metricsScrapes} scrapes`,
        outcome: `scrapes: ${answers.map((a) => a.status || a.error).join(' ')}`,
        cost,
        harm: `${scrapeFigures(answers)}; ${rssFigures(fresh, afterNames, cost.rssPeakMb)}; error log lines +${linesAt(logs, 'error')}`,
        details: { subscriptions: { settled, ends: tally(ends) }, scrapes: answers.map(({ body, ...a }) => ({ ...a, body: body?.slice(0, 300) })), logs },
      },
    ];
  },
};

export const metricsHttpOpName: Probe = {
  name: 'metrics-http-opname',
  ownGateway: true,
  timeoutMs: () => 60_000,
  async run(ctx): Promise<ProbeRow[]> {
    const { httpOpNames, httpOpNameChars, httpMetricsScrapes: metricsScrapes } = ctx.limits;
    const gateway = await ctx.gateway();
    const origin = originOf(gateway);
    const fresh = rssMb(gateway);
    ctx.log(`${httpOpNames} queries named with ${httpOpNameChars.toLocaleString('en-US')} characters`);
    const answers = await inParallel(httpOpNames, 8, (i) =>
      postGraphQL(origin, JSON.stringify({ query: `query ${longName(i, httpOpNameChars)} { __typename }` }), { signal: ctx.signal }),
    );
    const statuses = tally(answers.map(outcomeOf));
    const afterNames = rssMb(gateway);

    const { value: scraped, cost } = await scrapes(ctx, gateway, metricsScrapes);
    return [
      {
        probe: this.name,
        attack: `${httpOpNames} queries named with ${round(httpOpNameChars / 1000, 1)}k chars; ${metricsScrapes} scrapes`,
        outcome: `queries: ${statuses}; scrapes: ${scraped.map((a) => a.status || a.error).join(' ')}`,
        cost,
        harm: `${scrapeFigures(scraped)}; ${rssFigures(fresh, afterNames, cost.rssPeakMb)}`,
        details: { queries: statuses, scrapes: scraped.map(({ body, ...a }) => ({ ...a, body: body?.slice(0, 300) })) },
      },
    ];
  },
};
