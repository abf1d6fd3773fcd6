import { connect, type Socket } from 'node:net';
import { outcomeOf, postGraphQL } from '../http';
import { fdLimit, memoryMb, openFds } from '../procfs';
import { RawGraphQLWs } from '../ws-raw';
import { mb, originOf, simCalls, simCounters, sleep, tally, wsUrlOf } from './support';
import type { Probe, ProbeRow } from './types';

/**
 * Clients that hold server resources by being slow: sockets that never finish their
 * request body, and a WebSocket reader that stops reading while its streams run.
 */

/** Opens one socket, sends the request head and `bodyBytes` of a longer body, then goes silent. */
function slowSocket(port: number, head: string, onClose: () => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.write(head);
      resolve(socket);
    });
    socket.once('error', reject);
    socket.once('close', onClose);
    // Whatever the server answers (a 408, say) is read and dropped; errors after connect are expected.
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
  });
}

export const slowSockets: Probe = {
  name: 'slow-sockets',
  ownGateway: false,
  timeoutMs: (limits) => (Math.max(...limits.slowSocketCheckpointsS) + 30) * 1000,
  async run(ctx): Promise<ProbeRow[]> {
    const { slowSockets: count, slowSocketCheckpointsS: checkpoints } = ctx.limits;
    const gateway = await ctx.gateway();
    const origin = originOf(gateway);
    const port = Number(new URL(origin).port);
    const body = '{"query":"'; // 10 of the 1,000 bytes announced
    const head =
      `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
      `content-length: 1000\r\n\r\n${body}`;
    const sockets: Socket[] = [];
    let closed = 0;
    ctx.defer(() => sockets.forEach((socket) => socket.destroy()));
    const fdsBefore = openFds(gateway.pid);
    ctx.log(`${count} sockets each sending the head of a 1,000-byte POST and 10 bytes of it; checks at ${checkpoints.join(', ')} s`);

    const { value: checks, cost } = await ctx.observe(gateway, async () => {
      for (let i = 0; i < count; i += 50) {
        const batch = Array.from({ length: Math.min(50, count - i) }, () => slowSocket(port, head, () => (closed += 1)));
        sockets.push(...(await Promise.all(batch)));
      }
      const opened = Date.now();
      const results = [];
      for (const at of checkpoints) {
        await sleep(at * 1000 - (Date.now() - opened), ctx.signal);
        const normal = await postGraphQL(origin, JSON.stringify({ query: '{ __typename }' }), { timeoutMs: 5000 });
        results.push({ atS: at, heldOpen: count - closed, serverFds: openFds(gateway.pid), normalRequest: outcomeOf(normal), normalMs: normal.ms });
      }
      return results;
    });
    sockets.forEach((socket) => socket.destroy());
    const limit = fdLimit(gateway.pid);
    return [
      {
        probe: this.name,
        attack: `${count} sockets: POST head, content-length 1000, 10 bytes sent, then silence`,
        outcome: checks.map((c) => `${c.heldOpen}/${count} open at ${c.atS} s`).join(', '),
        cost,
        harm:
          `server fds ${fdsBefore ?? '-'} → ${checks.map((c) => c.serverFds ?? '-').join(' → ')} (limit ${limit ?? '-'}); ` +
          `normal request: ${checks.map((c) => `${c.normalRequest} in ${c.normalMs.toFixed(0)} ms`).join(', ')}`,
        details: { checks, fdsBefore, fdLimit: limit },
      },
    ];
  },
};

const STREAM = 'subscription ($input: CompletionInput!) { completionStream(input: $input) { index delta finishReason } }';
/** The simulator's answer echoes the first 24 words of the prompt: long words make long answers. */
const ECHOED_WORDS = 24;

export const wsSlowReader: Probe = {
  name: 'ws-slow-reader',
  ownGateway: true,
  timeoutMs: (limits) => (limits.wsPausedS + 75) * 1000,
  async run(ctx): Promise<ProbeRow[]> {
    const { wsSubscriptions: count, wsPromptWordChars: wordChars, wsPausedS } = ctx.limits;
    const gateway = await ctx.gateway();
    const ws = await RawGraphQLWs.connect(wsUrlOf(gateway));
    ctx.defer(() => ws.close());
    ws.pause();
    const prompt = (i: number) => Array.from({ length: ECHOED_WORDS }, (_, w) => `s${i}w${w}${'x'.repeat(wordChars)}`).join(' ');
    const payloads = Array.from({ length: count }, (_, i) =>
      JSON.stringify({ query: STREAM, variables: { input: { prompt: prompt(i), thinking: false, cache: 'BYPASS' } } }),
    );
    const simBefore = await simCounters(ctx.sim);
    ctx.log(`${count} streams of ~${mb(ECHOED_WORDS * wordChars)} answers on one WebSocket that stopped reading; ${wsPausedS} s`);

    // The window is the pause, counted from the first subscribe message: the messages are
    // not awaited one by one (the server reads them at its own pace while streams run).
    let subscribesWrittenMs: number | undefined;
    const { value: rssAtEnd, cost } = await ctx.observe(gateway, async () => {
      const start = Date.now();
      const subscribes = payloads.map((payload, i) => ws.subscribe(String(i), payload));
      void Promise.all(subscribes).then(
        () => (subscribesWrittenMs = Date.now() - start),
        () => undefined,
      );
      await sleep(wsPausedS * 1000, ctx.signal);
      return memoryMb(gateway.pid)?.rss;
    });

    ws.resume();
    const settled = await ws.settled(ctx.quick ? 20_000 : 45_000);
    const ends = [...ws.subscriptions.values()].map((s) => {
      if (s.codes.length > 0) return [...new Set(s.codes)].join('+');
      if (s.end === 'complete') return s.finished ? 'complete' : 'complete (no last chunk)';
      return s.end ?? 'unfinished';
    });
    const streams = simCalls(await simCounters(ctx.sim), '/chat/completions') - simCalls(simBefore, '/chat/completions');
    const closedByServer = ws.closeCode;
    ws.close();
    return [
      {
        probe: this.name,
        attack: `${count} completionStream on 1 WS, reader paused ${wsPausedS} s (answers ~${mb(ECHOED_WORDS * wordChars)} each)`,
        outcome:
          `ended: ${tally(ends)}${settled ? '' : ' (not all ended)'}` +
          (closedByServer !== undefined ? `; socket closed by the server (${closedByServer})` : ''),
        cost,
        harm:
          `RSS ${cost.rssBeforeMb?.toFixed(0) ?? '-'} → ${rssAtEnd?.toFixed(0) ?? '-'} MB after ${wsPausedS} s ` +
          `(peak ${cost.rssPeakMb?.toFixed(0) ?? '-'} MB); ${streams} upstream streams; client read ${mb(ws.bytesReceived)}`,
        details: { ends: tally(ends), settled, closeCode: closedByServer, subscribesWrittenMs, upstreamStreams: streams, bytesReceived: ws.bytesReceived },
      },
    ];
  },
};
