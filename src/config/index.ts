export { loadConfig, testConfig, ConfigError, type Config, type LoadConfigOptions, type LogLevel, type NodeEnv, type ClusterConfig, type QuotasConfig, type TelemetryConfig } from './config';
export { DEFAULT_PRICES, type ModelPrices, type PriceTable, type TokenRates } from './prices';
