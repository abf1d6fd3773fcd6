import { ConfigError, loadConfig } from '../config';
import { createLogger } from '../telemetry/logger';
import { startSimulator } from './server';

/** `npm run simulator`: a standalone simulator that accepts any API key. */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const simulator = await startSimulator({
    host: config.server.host,
    port: config.simulator.port,
    latencyMs: config.simulator.latencyMs,
    tokenDelayMs: config.simulator.tokenDelayMs,
  });
  logger.info({ url: simulator.url }, 'DeepSeek simulator listening (any API key is accepted)');

  const stop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'DeepSeek simulator stopping');
    void simulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  // Config problems already name the variable and the accepted form.
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
});
