#!/usr/bin/env node
import { runService } from '@fleetpulse/runtime';
import { loadConfig } from './config';
import { startProcessor } from './service';

const help = `fleetpulse stream-processor: per-device event-time windows from telemetry.raw into Cassandra and
metrics.aggregates: one window record per device, resolution and window (docs/contract.md, "Windows"), and
provisional snapshots of open windows to metrics.live.

Usage: node stream-processor/dist/main.js [--help]

Configuration is by environment variable (validated at start-up):
  FLEETPULSE_KAFKA_BROKERS             host:port,... (default 127.0.0.1:9092)
  FLEETPULSE_CASSANDRA_CONTACT_POINTS  host:port,... (default 127.0.0.1:9042)
  FLEETPULSE_CASSANDRA_DC              local data center (default datacenter1)
  FLEETPULSE_KEYSPACE                  (default fleetpulse)
  FLEETPULSE_PROCESSOR_GROUP           consumer group; instances of one group split the partitions
                                       (default fleetpulse-stream-processor)
  FLEETPULSE_PROCESSOR_TOPIC           source topic (default telemetry.raw)
  FLEETPULSE_RESOLUTIONS               window sizes (default 1s,10s,60s)
  FLEETPULSE_ALLOWED_LATENESS_MS       L: watermark = max event time - L (default 2000)
  FLEETPULSE_IDLE_TIMEOUT_MS           close an idle device's windows after this (default 5000)
  FLEETPULSE_IDLE_SAFETY_MARGIN_MS     wall clock minus this stands in for processing time (default 1000)
  FLEETPULSE_TTL                       row TTL per resolution in seconds, over the defaults
                                       1s=86400,10s=2592000,60s=34560000 (1 day, 30 days, 400 days; 0 = forever)
  FLEETPULSE_STORED_RESOLUTIONS        resolutions written to Cassandra (default 1s,10s,60s); the others are
                                       live only: published to metrics.aggregates, not stored
  FLEETPULSE_PROCESSOR_MAX_METRICS_PER_DEVICE  distinct metric names a device's open windows may hold (default
                                       64); an event adding more goes to telemetry.dlq with the reason
  FLEETPULSE_PROCESSOR_MAX_QUIET_DEVICES  quiet devices (no open window) kept in memory (default 50000, shared
                                       by the partitions it holds); beyond it the longest quiet leave memory
                                       (their state stays in Cassandra, processor_device_state) and are read
                                       back when they report
  FLEETPULSE_CASSANDRA_WRITE_CONCURRENCY  writes in flight (default 128)
  FLEETPULSE_PROCESSOR_FETCH_BYTES        most bytes a fetch takes per partition (default 2097152): more rows per
                                          Cassandra batch, more memory
  FLEETPULSE_PROCESSOR_LIVE_INTERVAL_MS  provisional snapshots of the finest open window of each device that
                                       received events go to metrics.live every this many ms (default 50;
                                       0 = none); never on the write path of final rows
  FLEETPULSE_PROCESSOR_LIVE_MIN_GAP_MS   a device's snapshots at most once per this many ms (default 250)
  FLEETPULSE_PROCESSOR_LIVE_MAX_PER_SEC  most snapshots a second (default 200000); past it devices wait, coalesced
  FLEETPULSE_PROCESSOR_MAX_PENDING_OUTPUTS  batches are folded while the previous flush is written; past this
                                       many closed windows waiting for a flush, reading waits (default 200000)
  FLEETPULSE_COMMIT_INTERVAL_MS        checkpoint + commit at most this often (default 1000)
  FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS  a dead instance's partitions move after this (default 30000)
  FLEETPULSE_PROCESSOR_SHUTDOWN_GRACE_MS   on SIGTERM, wait this long for the final flush (default 15000);
                                           the same signal again exits at once (uncommitted records are read
                                           again); a SIGTERM after a SIGINT (Ctrl-C under npm start) does not
  FLEETPULSE_PROCESSOR_HOST / _PORT    /healthz /readyz /metrics (default 0.0.0.0:8081)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   OpenTelemetry traces to this OTLP/HTTP URL (or OTEL_EXPORTER_OTLP_ENDPOINT
                                       + /v1/traces); unset: no tracing (docs/contract.md, "Traces and stage delays")
  FLEETPULSE_TRACE_SAMPLE_RATIO        share of new traces sampled, 0-1 (default 1; a sampled parent always is)
`;

runService({
  name: 'stream-processor',
  help: help,
  stopping: 'writing what is closed and committing',
  start: () => startProcessor(loadConfig()),
});
