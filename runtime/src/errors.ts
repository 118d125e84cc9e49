/** Every problem of a service's configuration at once, one per line, so a user mends them in one go. */
export class ServiceConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly service: string,
    readonly problems: string[],
  ) {
    super(`invalid ${service} configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** The first line of what was thrown: driver errors carry multi-line details that bury the cause in a log line. */
export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
}
