import { firstLine, ServiceConfigError } from './errors';

/** What a started service hands back: how to stop it cleanly. */
export interface Stoppable {
  close(): Promise<void>;
}

export interface ServiceMain {
  /** The name in log lines, e.g. "stream-processor". */
  name: string;
  /** Printed for --help / -h; the service is not started. */
  help: string;
  /** Parses the configuration (throwing a {@link ServiceConfigError}) and starts the service. */
  start(args: string[]): Promise<Stoppable>;
  /** The log line of a stop request, after "<name>: <signal>: " (default "stopping"). */
  stopping?: string;
  /** The log line when the same signal comes again and the process leaves at once (default: nothing is lost). */
  insisted?: string;
}

/**
 * A service's `main`: --help, start, one clean stop on SIGTERM or SIGINT, and exit codes a supervisor can read
 * (0 stopped cleanly, 1 failed, 2 invalid configuration).
 *
 * Ctrl-C under `npm start` reaches a service twice: SIGINT from the terminal's process group, then the launcher's
 * SIGTERM. That pair is one request. The same signal twice is the user insisting: the process leaves at once, which
 * loses nothing, because every service acknowledges or commits only what is durable.
 */
export function runService(s: ServiceMain, argv: string[] = process.argv.slice(2)): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(s.help);
    return;
  }
  // A configuration thrown synchronously is reported like one thrown later.
  const started = Promise.resolve().then(() => s.start(argv));
  let stopping: string | undefined;
  const stop = (signal: string) => {
    if (stopping === 'SIGINT' && signal === 'SIGTERM') return;
    if (stopping) {
      console.log(
        `${s.name}: ${signal} again: exiting now; ${s.insisted ?? 'nothing acknowledged is lost: what was not committed is done again on restart'}`,
      );
      process.exit(1);
    }
    stopping = signal;
    console.log(`${s.name}: ${signal}: ${s.stopping ?? 'stopping'}`);
    started
      .then((running) => running.close())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          console.error(`${s.name}: shutdown failed: ${firstLine(e)}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  started.catch((e: unknown) => {
    if (e instanceof ServiceConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    console.error(`${s.name}: failed to start: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
