/**
 * The processor suite's input, apart from the suite so that both consumers of it read one definition: the topic the
 * processor runs on, and the in-process rows the insert ceilings write (processor-ceilings.ts): the same records,
 * devices and rows.
 */
import type { TelemetryEvent } from '@fleetpulse/contracts';
import type { Kafka } from 'kafkajs';
import { produce } from './services';

export interface Layout {
  devices: number;
  /** Seconds of event time; every device reports once a second. */
  seconds: number;
  /** A device's events per Kafka record. */
  perRecord: number;
  partitions: number;
  /** Event time of the first second, epoch ms. */
  t0: number;
}

export interface BenchRecord {
  partition: number;
  key: string;
  events: TelemetryEvent[];
}

/** The suite's records in production order: rounds of `perRecord` seconds, every device once per round. */
export function* records(prefix: string, l: Layout): Generator<BenchRecord> {
  for (let s = 0; s < l.seconds; s += l.perRecord) {
    for (let d = 0; d < l.devices; d++) {
      const events: TelemetryEvent[] = [];
      for (let k = 0; k < l.perRecord && s + k < l.seconds; k++) {
        const ts = l.t0 + (s + k) * 1000 + (d % 1000);
        events.push({
          deviceId: `${prefix}-${d}`,
          ts,
          metrics: {
            temp: 20 + ((d + k) % 10) / 3,
            humidity: 40 + (k % 7),
            vib: 0.1 + (d % 5) / 50,
            volt: 230 + (s % 3),
          },
          seq: s + k,
          receivedAt: ts + 40,
        });
      }
      yield { partition: d % l.partitions, key: `${prefix}-${d}`, events };
    }
  }
}

/** Fills `topic` with the records of devices `${prefix}-<d>`; returns how many, and their keys' and values' bytes. */
export async function fill(
  kafka: Kafka,
  topic: string,
  prefix: string,
  l: Layout,
): Promise<{ records: number; bytes: number }> {
  let bytes = 0;
  const messages = function* () {
    for (const r of records(prefix, l)) {
      const value = JSON.stringify(r.events);
      bytes += value.length + r.key.length;
      yield { partition: r.partition, key: r.key, value };
    }
  };
  process.stderr.write(`filling ${topic} with ${l.devices * l.seconds} events of ${l.devices} devices...`);
  const n = await produce(kafka, topic, messages());
  process.stderr.write(` ${n} records\n`);
  return { records: n, bytes };
}
