#!/usr/bin/env node
import { ConfigError, helpText, loadConfig } from './config';
import { startDashboard } from './app';

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) return void process.stdout.write(helpText);
  const running = await startDashboard(loadConfig());
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`dashboard-api: ${signal}: closing`);
    running.close().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error('dashboard-api: shutdown failed', e);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  console.error(
    e instanceof ConfigError
      ? e.message
      : `dashboard-api: failed to start: ${e instanceof Error ? e.message : String(e)}`,
  );
  process.exit(1);
});
