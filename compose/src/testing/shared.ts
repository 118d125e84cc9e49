/** Set by the jest globalSetup to the components it started (comma separated), read by globalTeardown. */
export const startedEnvVar = 'FLEETPULSE_STACK_STARTED_BY_JEST';
