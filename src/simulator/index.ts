export { startSimulator } from './server';
export { simulatedAnswer } from './answer';
export { DEFAULT_SIMULATOR_MODELS, type SimulatedModel } from './models';
export type {
  Fault,
  FaultInjector,
  RecordedRequest,
  Simulator,
  SimulatorCounters,
  SimulatorOptions,
} from './types';
