/**
 * The one error the launcher throws on purpose: a single readable message plus a hint saying what to do about it.
 * The CLI prints both and exits non-zero; anything else reaching the CLI is a bug and is printed with its stack.
 */
export class StackError extends Error {
  override readonly name = 'StackError';
  readonly hint: string | undefined;

  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.hint = hint;
  }
}

export function isStackError(e: unknown): e is StackError {
  return e instanceof StackError;
}

/** The fix we suggest for any broken data folder. */
export const wipeHint = (dir: string): string =>
  `run \`npm run stack -- down --wipe\` (deletes the local Kafka and Cassandra data) or delete ${dir}`;
