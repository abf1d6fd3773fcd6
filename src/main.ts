import { ConfigError, loadConfig } from './config';
import { startGateway } from './app';
import { createLogger, flushLogs } from './telemetry/logger';
import { startTelemetry } from './telemetry/sdk';

/** Process entry: config → gateway → signal handling. Exits 0 after a clean drain. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  // Whatever ends the process (a crash included), buffered log lines are written first.
  process.on('exit', flushLogs);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  // Before the gateway: its layers take their instruments from the registered providers.
  const telemetry = startTelemetry(config.telemetry, { logger });
  const gateway = await startGateway(config, logger, { telemetry });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting for the drain');
      flushLogs();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'draining in-flight requests');
    gateway
      .close()
      // Flush the last spans; an unreachable collector must not hold the exit for long.
      .then(() => Promise.race([telemetry.shutdown(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]))
      .then(
        () => {
          logger.info('stopped');
          flushLogs();
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          flushLogs();
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
