#!/usr/bin/env node
import { ConfigError, helpText, loadConfig } from './config';
import { startScoring } from './service';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) return void process.stdout.write(helpText);
  const running = await startScoring(loadConfig(process.env, args));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`scoring: ${signal}: stopping`);
    running.close().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error('scoring: shutdown failed', e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) console.error(e.message);
  else console.error('scoring: failed to start:', e);
  process.exit(e instanceof ConfigError ? 2 : 1);
});
