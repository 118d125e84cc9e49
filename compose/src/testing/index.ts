/** `@fleetpulse/compose/testing`: what integration tests of every package share (unique names, clients, topics). */
export * from './helpers';
