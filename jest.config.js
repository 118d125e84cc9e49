// --forceExit (package.json): kafkajs and cassandra-driver clients of some suites keep sockets past their tests;
// the suites' own assertions are complete by then, and a hung runner would hide a green result.
// Unit tests (*.test.ts) run in parallel with no infrastructure; integration tests (*.int.test.ts) run in band
// against the real Kafka and Cassandra that the launcher in compose/ brings up (globalSetup) and leaves as found.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];
const common = {
  transform: { '^.+\\.ts$': swc },
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/target/'],
  // A package's name and its `exports` subpaths (package.json) map to its sources, so tests never need a build.
  moduleNameMapper: {
    '^@fleetpulse/([a-z-]+)$': '<rootDir>/$1/src/index.ts',
    '^@fleetpulse/([a-z-]+)/([a-z-]+)$': '<rootDir>/$1/src/$2',
  },
};
module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      setupFilesAfterEnv: ['<rootDir>/compose/src/testing/unit-timeout.ts'],
      testMatch: ['<rootDir>/*/src/**/*.test.ts'],
      testPathIgnorePatterns: [...common.testPathIgnorePatterns, '\\.int\\.test\\.ts$'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/*/src/**/*.int.test.ts'],
      globalSetup: '<rootDir>/compose/src/testing/global-setup.ts',
      globalTeardown: '<rootDir>/compose/src/testing/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/compose/src/testing/integration-timeout.ts'],
    },
  ],
};
