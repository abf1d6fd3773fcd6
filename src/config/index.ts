export { loadConfig, testConfig, ConfigError, type Config, type LoadConfigOptions, type LogLevel, type NodeEnv } from './config';
