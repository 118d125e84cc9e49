#!/usr/bin/env node
/** CLI entry: `fleetpulse-simulator --help`. */
import { parseCommandLine, helpText } from './config';
import { ConfigError, SimulatorError } from './errors';
import { runSimulator } from './run';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`fleetpulse-simulator: invalid options:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(helpText());
    return 0;
  }
  try {
    const summary = await runSimulator(parsed.config, {
      stderr: (line) => process.stderr.write(`${line}\n`),
      stdout: (text) => process.stdout.write(text),
      onSignal: (handler) => {
        process.on('SIGINT', handler);
        process.on('SIGTERM', handler);
        return () => {
          process.off('SIGINT', handler);
          process.off('SIGTERM', handler);
        };
      },
    });
    return summary.exitCode;
  } catch (err) {
    if (err instanceof SimulatorError && err.kind === 'config') {
      process.stderr.write(`fleetpulse-simulator: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fleetpulse-simulator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
