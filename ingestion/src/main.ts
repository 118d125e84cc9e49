#!/usr/bin/env node
import { runService } from '@fleetpulse/runtime';
import { loadConfig } from './config';
import { startIngestion } from './service';

const help = `fleetpulse ingestion: telemetry over HTTP and MQTT into Kafka (docs/contract.md, "Telemetry in";
bounds and threat model: docs/security.md, "Ingestion").

Usage: node ingestion/dist/main.js [--help]

Configuration is by environment variable (validated at start-up):
  FLEETPULSE_ENV                     development | production (default production). In development the
                                     token "dev-token" is a gateway token for every device.
  FLEETPULSE_TOKENS                  device tokens: token[=device-glob],... e.g. "s3cret-token-1=sensor-*"
                                     (over MQTT such a token publishes only its own device's topic)
  FLEETPULSE_GATEWAY_TOKENS          gateway tokens, same form: over MQTT one connection publishes for every
                                     device of the glob (over HTTP both kinds write for every device of the glob)
  FLEETPULSE_INGESTION_HOST / _PORT  listen address (default 0.0.0.0:8080; in development 127.0.0.1:8080,
                                     the loopback address only: set the host to open it to the network)
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
  FLEETPULSE_INGESTION_PRODUCERS     idempotent Kafka producers, 1-64 (default 1): each owns a share of the
                                     partitions and has one produce request in flight, so this many may be in
                                     flight at once; a device's records keep their order and partition. Raise
                                     it where Kafka's round trip, not CPU, bounds ingestion (remote brokers)
  FLEETPULSE_RETRY_AFTER_SECONDS     Retry-After of a 503 (default 2)
  FLEETPULSE_SHUTDOWN_GRACE_MS       drain time on SIGTERM (default 15000)
Rate limits (token buckets; HTTP answers 429 with Retry-After, MQTT closes the connection without PUBACK):
  FLEETPULSE_TOKEN_EVENTS_PER_SECOND / _BURST    events per token (default 1000000 / 1000000; 0: no limit)
  FLEETPULSE_DEVICE_EVENTS_PER_SECOND / _BURST   events per device (default 50000 / 100000; 0: no limit)
  FLEETPULSE_RATE_MAX_DEVICES        devices tracked for their rate at most (default 100000)
  FLEETPULSE_LOGIN_FAILURES_PER_MINUTE / _BURST  failed logins (HTTP 401, CONNACK 4/5) per source address,
                                     IPv6 by /64 (default 60 / 20; 0: no limit); past it the address gets 429
                                     (MQTT: CONNACK 3) without its token being looked at
  FLEETPULSE_LOGIN_MAX_ADDRESSES     addresses tracked for failed logins at most (default 100000)
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OpenTelemetry traces to this OTLP/HTTP URL (or OTEL_EXPORTER_OTLP_ENDPOINT
                                     + /v1/traces); unset: no tracing (docs/contract.md, "Traces and stage delays")
  FLEETPULSE_TRACE_SAMPLE_RATIO      share of new traces sampled, 0-1 (default 1; a sampled parent always is)
MQTT:
  FLEETPULSE_MQTT_PORT               MQTT 3.1.1 port (default 1883; 0: any free port; off: no MQTT)
  FLEETPULSE_MQTT_HOST               MQTT listen address (default: FLEETPULSE_INGESTION_HOST's)
  FLEETPULSE_MQTT_MAX_PACKET_BYTES   largest packet; a larger one closes the connection as its header arrives
                                     (default FLEETPULSE_MAX_BODY_BYTES + 65536; a CONNECT: 8 KiB at most)
  FLEETPULSE_MQTT_MAX_BUFFERED_BYTES  bytes of packets not yet whole, across connections; a connection that
                                     would pass it is closed (default 50331648 = 48 MiB, or 2 packets if more)
  FLEETPULSE_MQTT_MAX_CONNECTIONS    open connections at most; more are closed at once (default 10000; of
                                     them at most 1000 between their first byte and their login)
  FLEETPULSE_MQTT_CONNECT_TIMEOUT_MS  a connection not logged in this long after it was accepted is closed
                                     (default 10000)
  FLEETPULSE_MQTT_MAX_KEEPALIVE_SECONDS  keepalive 0 or longer is taken as this (default 1200)

MQTT: publish to telemetry/<deviceId> (QoS 0 or 1; QoS 2 closes the connection) the payloads of
POST /v1/telemetry: a JSON object or array, or NDJSON (told apart by the bytes). Username: the device id;
password: its token; client id: the username, or a longer id that starts with it. The PUBACK goes out once
Kafka acknowledged; while Kafka is unavailable the connection is closed instead and the client resends.
`;

runService({
  name: 'ingestion',
  help: help,
  stopping: 'draining in-flight requests',
  start: () => startIngestion(loadConfig()),
});
