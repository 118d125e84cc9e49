#!/usr/bin/env node
import { cassandraClientOptions } from '@fleetpulse/runtime/cassandra';
import { parseArgs } from 'node:util';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, loadConfig } from '../config';
import { aggregateStoreFor } from '../storage/aggregate-store';
import { ReplayError, parseBound, resolveRange, type RangeBound } from './range';
import { replay, type ReplayProgress } from './replay';

const help = `fleetpulse replay: rebuild aggregates (and scores) from Kafka history.

Usage: npm run replay -- --from <ISO|offset> [--to <ISO|offset>] [--topic telemetry.raw] [--rescore [--rescore-topic metrics.aggregates]] [--dry-run]

  --from      first record: an ISO 8601 time (2026-11-23T10:00:00Z; Kafka's offset-for-time index finds the offset of
              each partition) or an offset (a whole number, the same for every partition)
  --to        end of the range, exclusive (default: the end of the topic now)
  --topic     a topic of canonical events (default telemetry.raw)
  --rescore   also publish the rebuilt rows to metrics.aggregates: the running scoring service scores them with the
              models it has loaded now, so the range's scores name the new model version. Cassandra's anomaly rows
              for the same device, window and model are overwritten by the new version's anomalous scores; an old
              anomaly the new version no longer flags stays, naming the old version.
  --rescore-topic
              where --rescore publishes the rows (default metrics.aggregates, the topic the scoring service reads)
  --dry-run   print the range, partitions and record counts; write nothing
  --help      this text

Rows are upserted (idempotent): replaying a range writes the rows a first run on the same records wrote. Windows
that straddle the start of the range are written only where no row exists, never over one; windows still open at
its end are not written. Connection settings come from the stream-processor's environment variables
(FLEETPULSE_KAFKA_BROKERS, FLEETPULSE_CASSANDRA_CONTACT_POINTS, FLEETPULSE_RESOLUTIONS, ...: see its --help).`;

function bar(p: ReplayProgress): string {
  const frac = p.totalRecords === 0 ? 1 : Math.min(1, p.records / p.totalRecords);
  const width = 30;
  const done = Math.round(frac * width);
  const rate = p.seconds > 0 ? p.events / p.seconds : 0;
  const recRate = p.seconds > 0 ? p.records / p.seconds : 0;
  const eta = recRate > 0 ? Math.max(0, (p.totalRecords - p.records) / recRate) : NaN;
  return `[${'='.repeat(done)}${' '.repeat(width - done)}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.records.toLocaleString('en-US')}/${p.totalRecords.toLocaleString('en-US')} records, ${Math.round(rate).toLocaleString('en-US')} events/s, ETA ${Number.isNaN(eta) ? '?' : `${eta.toFixed(0)} s`}`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      topic: { type: 'string', default: 'telemetry.raw' },
      rescore: { type: 'boolean', default: false },
      'rescore-topic': { type: 'string', default: 'metrics.aggregates' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (!values.rescore && process.argv.some((a) => a.startsWith('--rescore-topic')))
    throw new ReplayError('--rescore-topic applies only with --rescore', 'add --rescore, or leave --rescore-topic out');
  if (!values.from) throw new ReplayError('--from is required', 'e.g. npm run replay -- --from 2026-11-23T10:00:00Z');
  const from = parseBound('--from', values.from);
  const to: RangeBound | undefined = values.to ? parseBound('--to', values.to) : undefined;
  if (values.topic === 'metrics.aggregates' || values.topic === 'anomaly.scores')
    throw new ReplayError(
      `--topic ${values.topic} holds derived rows, not events`,
      'replay the telemetry.raw range; add --rescore to re-score it',
    );
  const config = loadConfig();
  const kafka = new Kafka({ clientId: 'fleetpulse-replay', brokers: config.kafkaBrokers, logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  let ranges;
  try {
    ranges = await resolveRange(admin, values.topic, from, to);
  } finally {
    await admin.disconnect();
  }
  const total = ranges.reduce((n, r) => n + (r.end - r.start), 0n);
  console.error(
    `replay ${values.topic} from ${values.from}${values.to ? ` to ${values.to}` : ' to its end'}: ${total} records`,
  );
  for (const r of ranges)
    console.error(
      `  partition ${r.partition}: offsets ${r.start}..${r.end - 1n} (${r.end - r.start} records)${r.start <= r.low ? ', from the partition start' : ''}`,
    );
  if (values['dry-run']) return 0;

  const cassandra = new Client(cassandraClientOptions('replay', config));
  await cassandra.connect();
  const store = aggregateStoreFor(cassandra, config, (l) => console.error(l));
  let lastPrint = 0;
  try {
    const result = await replay(kafka, store, {
      topic: values.topic,
      ranges,
      from,
      aggregator: config.aggregator,
      rescore: values.rescore,
      rescoreTopic: values['rescore-topic'],
      onProgress: (p) => {
        if (Date.now() - lastPrint < 500) return;
        lastPrint = Date.now();
        process.stderr.write(`\r${bar(p)}`);
      },
    });
    process.stderr.write(`\r${bar(result)}\n`);
    console.error(
      `done in ${result.seconds.toFixed(1)} s: ${result.events} events, ${result.rowsWritten} window rows written, ${result.partialRowsOffered} window rows straddling the start written only where absent, ${result.invalid} invalid records skipped${values.rescore ? `; window records published to ${values['rescore-topic']} for re-scoring` : ''}`,
    );
  } finally {
    await cassandra.shutdown();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof ReplayError) console.error(`replay: ${e.message}${e.hint ? `\n  ${e.hint}` : ''}`);
    else if (e instanceof ConfigError) console.error(e.message);
    else console.error(`replay: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
