/**
 * @fleetpulse/scoring/testing: dev tools, not the service. A simulated fleet folded into window records (training
 * data, integration tests, the bench). Apart from the main entry so the service itself never loads the simulator or
 * the stream processor, which are only devDependencies of scoring.
 */
export {
  simulateAggregates,
  truthByDevice,
  overlappingTruth,
  windowRecordOf,
  type SimulatedAggregates,
  type SimulateOptions,
} from './sim-data';
