/** Waits `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface BackoffOptions {
  /** [initialMs=100] - the first delay, in milliseconds. */
  initialMs?: number;
  /** [maxMs=10000] - no delay is longer, in milliseconds. */
  maxMs?: number;
  /**
   * [jitter=0.5] - the share of each delay drawn at random: 0.5 waits between half and all of it, so clients that
   * failed together do not retry together.
   */
  jitter?: number;
}

/** The delay before retry number `attempt` (0 for the first retry): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialMs = 100, maxMs = 10_000, jitter = 0.5 } = o;
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return cap * (1 - jitter) + cap * jitter * random();
}

export interface RetryOptions extends BackoffOptions {
  /** Called before each wait: the attempt that failed (1 for the first), the coming delay and the error. */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  /**
   * Rethrow instead of retrying when this says so: an error that will never succeed, or a service that is stopping
   * (whatever the operation was for stays uncommitted and is done again on the next start).
   */
  bail?: (error: unknown) => boolean;
}

/** Runs `op` until it succeeds, backing off between attempts; only `bail` ends it with the error. */
export async function retry<T>(op: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (o.bail?.(e)) throw e;
      const delay = backoffDelay(attempt - 1, o);
      o.onRetry?.(attempt, delay, e);
      await sleep(delay);
    }
  }
}
