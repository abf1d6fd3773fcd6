/**
 * The DeepSeek simulator as a child process of `npm run bench`: the same server as
 * `npm run simulator` (src/simulator/main.ts, any API key accepted), plus an IPC channel
 * so the bench can read the simulator's counters and change its latency between rows.
 *
 * Env: HOST (default 127.0.0.1), SIMULATOR_PORT (default 0), SIMULATOR_LATENCY_MS
 * (default 20), SIMULATOR_TOKEN_DELAY_MS (default 0).
 */
import { startSimulator } from '../src/simulator';

interface Command {
  id: string;
  cmd: 'counters' | 'setLatency' | 'resetCounters';
  latencyMs?: number;
}

async function main(): Promise<void> {
  const simulator = await startSimulator({
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.SIMULATOR_PORT ?? 0),
    latencyMs: Number(process.env.SIMULATOR_LATENCY_MS ?? 20),
    tokenDelayMs: Number(process.env.SIMULATOR_TOKEN_DELAY_MS ?? 0),
  });
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: 'simulator listening', url: simulator.url })}\n`);

  process.on('message', (message: Command) => {
    if (message.cmd === 'setLatency' && typeof message.latencyMs === 'number') {
      simulator.setOptions({ latencyMs: message.latencyMs });
      process.send?.({ id: message.id, value: true });
    } else if (message.cmd === 'resetCounters') {
      simulator.counters.reset();
      process.send?.({ id: message.id, value: true });
    } else if (message.cmd === 'counters') {
      const c = simulator.counters;
      process.send?.({
        id: message.id,
        value: { total: c.total, byPath: c.byPath, byStatus: c.byStatus, maxInFlight: c.maxInFlight, connectionsOpened: c.connectionsOpened },
      });
    }
  });

  const stop = (): void => {
    void simulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Never outlive the bench: the IPC channel closes when the parent goes away.
  process.once('disconnect', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`simulator failed to start: ${String(error)}\n`);
  process.exit(1);
});
