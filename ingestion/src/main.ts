#!/usr/bin/env node
import { runService } from '@fleetpulse/runtime';
import { loadConfig } from './config';
import { startIngestion } from './service';

const help = `fleetpulse ingestion: telemetry over HTTP and MQTT into Kafka (shared/design.md, "Telemetry in").

Usage: node ingestion/dist/main.js [--help]

Configuration is by environment variable (validated at start-up):
  FLEETPULSE_ENV                     development | production (default production). In development the
                                     token "dev-token" is accepted for every device.
  FLEETPULSE_TOKENS                  token[=device-glob],... e.g. "s3cret-token-1=sensor-*,admin-token-123"
  FLEETPULSE_INGESTION_HOST / _PORT  listen address (default 0.0.0.0:8080)
  FLEETPULSE_KAFKA_BROKERS           host:port,... (default 127.0.0.1:9092)
  FLEETPULSE_INGESTION_TOPIC         topic of accepted events (default telemetry.raw)
  FLEETPULSE_MAX_BODY_BYTES          body limit, bytes (default 5242880)
  FLEETPULSE_MAX_EVENTS_PER_REQUEST  events per request (default 10000)
  FLEETPULSE_MAX_IN_FLIGHT_EVENTS    events waiting for Kafka before answering 503 (default 200000)
  FLEETPULSE_MAX_FUTURE_MS / _PAST_MS  bounds on event time (default 5 min / 30 days)
  FLEETPULSE_REQUEST_TIMEOUT_MS      a request must arrive within this (default 30000)
  FLEETPULSE_PRODUCE_TIMEOUT_MS      wait for Kafka before answering 503 (default 10000)
  FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES  bytes of one Kafka produce request at most; requests that wait together
                                     go in several of these (default auto: the topics' max.message.bytes,
                                     asked at start-up; 1 MiB when Kafka cannot be asked)
  FLEETPULSE_RETRY_AFTER_SECONDS     Retry-After of a 503 (default 2)
  FLEETPULSE_SHUTDOWN_GRACE_MS       drain time on SIGTERM (default 15000)
  FLEETPULSE_MQTT_PORT               MQTT 3.1.1 port (default 1883; 0: any free port; off: no MQTT)
  FLEETPULSE_MQTT_HOST               MQTT listen address (default: FLEETPULSE_INGESTION_HOST)

MQTT: publish to telemetry/<deviceId> (QoS 0 or 1) the payloads of POST /v1/telemetry: a JSON object or array,
or NDJSON (told apart by the bytes). Username: the device id; password: its token. The PUBACK goes out once
Kafka acknowledged; while Kafka is unavailable the connection is closed instead and the client resends.
`;

runService({
  name: 'ingestion',
  help: help,
  stopping: 'draining in-flight requests',
  start: () => startIngestion(loadConfig()),
});
