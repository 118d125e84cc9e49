/**
 * One error family for the simulator. `retriable` says whether sending the same batch again may succeed; callers
 * decide by the flag and by `kind` (the key errors are counted under), never by parsing messages.
 */
export class SimulatorError extends Error {
  override name = 'SimulatorError';
  readonly kind: string;
  readonly retriable: boolean;

  constructor(message: string, options: { kind: string; retriable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = options.kind;
    this.retriable = options.retriable;
  }
}

/** A request that got no HTTP answer: refused, reset, timed out. Always worth retrying. */
export class TransportError extends SimulatorError {
  override name = 'TransportError';

  constructor(message: string, kind: string, cause?: unknown) {
    super(message, { kind, retriable: true, cause });
  }
}

/** The options or arguments are unusable; the message lists every problem, one per line. */
export class ConfigError extends SimulatorError {
  override name = 'ConfigError';

  constructor(readonly problems: string[]) {
    super(problems.join('\n'), { kind: 'config', retriable: false });
  }
}
