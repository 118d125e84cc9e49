import type { TelemetryEvent } from '@fleetpulse/contracts';
import type { Message } from 'kafkajs';

/**
 * Most of an invalid record's value a DLQ message carries. Larger values are cut, or the broker (message.max.bytes,
 * 1 MiB by default) would refuse the message for ever and every flush after it would fail: the header `truncated`
 * gives the original size, and `error` names the record's topic, partition and offset, where it stays whole.
 */
export const DlqMaxValueBytes = 256 * 1024;

/** Likewise for keys (a device id is short; a foreign producer's key need not be). */
export const DlqMaxKeyBytes = 4096;

/** The telemetry.dlq message for a record of `topic`/`partition` that is not a valid event. */
export function dlqMessage(
  record: { key: Buffer | null; value: Buffer | null; offset: string },
  where: { topic: string; partition: number },
  reason: string,
  now: number = Date.now(),
): Message {
  const headers: Record<string, string> = {
    error: `${where.topic}[${where.partition}]@${record.offset}: ${reason.length > 1000 ? `${reason.slice(0, 1000)}...` : reason}`,
    source: 'stream-processor',
    receivedAt: String(now),
  };
  let value = record.value;
  if (value && value.length > DlqMaxValueBytes) {
    headers.truncated = `${value.length} bytes, first ${DlqMaxValueBytes} kept`;
    value = value.subarray(0, DlqMaxValueBytes);
  }
  let key = record.key;
  if (key && key.length > DlqMaxKeyBytes) {
    headers.keyTruncated = `${key.length} bytes, first ${DlqMaxKeyBytes} kept`;
    key = key.subarray(0, DlqMaxKeyBytes);
  }
  return { key, value, headers };
}

/**
 * The telemetry.dlq message for an event the aggregator refused (contract v2, cardinality): the event itself as JSON,
 * keyed by its device, `error` naming where it was read and why.
 */
export function rejectedEventDlqMessage(
  r: { partition: number; offset: string; event: TelemetryEvent; reason: string },
  topic: string,
  now: number = Date.now(),
): Message {
  return dlqMessage(
    { key: Buffer.from(r.event.deviceId), value: Buffer.from(JSON.stringify(r.event)), offset: r.offset },
    { topic, partition: r.partition },
    r.reason,
    now,
  );
}
