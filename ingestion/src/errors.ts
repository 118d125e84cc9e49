/** Errors of the ingestion path. `retriable` says whether the client should try again later (a 503). */
export class IngestionError extends Error {
  override name = 'IngestionError';
  readonly retriable: boolean;
  constructor(message: string, opts: { retriable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.retriable = opts.retriable;
  }
}

/** Kafka did not acknowledge in time, or is unreachable: nothing of the request may be reported as accepted. */
export class KafkaUnavailableError extends IngestionError {
  override name = 'KafkaUnavailableError';
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: true, cause });
  }
}

/** Too many events are waiting for Kafka's acknowledgement; memory stays bounded by refusing more. */
export class OverloadedError extends IngestionError {
  override name = 'OverloadedError';
  constructor(message: string) {
    super(message, { retriable: true });
  }
}

/**
 * Kafka refused a record as larger than its `max.message.bytes` (one device's events of one request make one
 * record): retrying cannot help, the sender must send less at once.
 */
export class RecordTooLargeError extends IngestionError {
  override name = 'RecordTooLargeError';
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: false, cause });
  }
}
