import type { ComponentName } from '../stack';
import { stackDown } from '../stack';
import { startedEnvVar } from './shared';

/** Stops what globalSetup started, nothing else; FLEETPULSE_KEEP_STACK=1 keeps it running for the next run. */
export default async function globalTeardown(): Promise<void> {
  const started = (process.env[startedEnvVar] ?? '').split(',').filter(Boolean) as ComponentName[];
  if (started.length === 0) return;
  if (process.env.FLEETPULSE_KEEP_STACK === '1') {
    process.stderr.write(`[stack] FLEETPULSE_KEEP_STACK=1: leaving ${started.join(', ')} running\n`);
    return;
  }
  await stackDown({ only: started });
}
