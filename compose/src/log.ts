/** Where the launcher's progress lines go; the CLI prints them, tests usually silence them. */
export type Logger = (line: string) => void;

export const stderrLogger: Logger = (line) => process.stderr.write(`[stack] ${line}\n`);
export const silentLogger: Logger = () => undefined;

/** Runs `work`, logging `label (N s)` every `everyMs` while it runs, so long waits show progress. */
export async function withProgress<T>(
  log: Logger,
  label: string,
  work: () => Promise<T>,
  everyMs = 10_000,
): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => log(`${label} (${Math.round((Date.now() - started) / 1000)} s)`), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
