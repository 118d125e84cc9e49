import { stackUp } from '../stack';
import { startedEnvVar } from './shared';

/**
 * jest globalSetup of the integration project: brings the stack up or reuses a running one. What it started is
 * recorded in process.env (globalSetup and globalTeardown share the jest parent process) so teardown stops only that.
 */
export default async function globalSetup(): Promise<void> {
  const up = await stackUp();
  process.env[startedEnvVar] = up.started.join(',');
}
