import type { TelemetryEvent } from '@fleetpulse/contracts';

export type BodyFormat = 'json' | 'ndjson';

/** The Content-Type ingestion expects for each body format (docs/contract.md, "Telemetry in"). */
export const ContentTypes: Readonly<Record<BodyFormat, string>> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
};

/** A request body: a JSON array of events, or one JSON event per line (each line ends with a newline). */
export function encodeBatch(events: readonly TelemetryEvent[], format: BodyFormat): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify(events));
  let s = '';
  for (const ev of events) s += JSON.stringify(ev) + '\n';
  return Buffer.from(s);
}
