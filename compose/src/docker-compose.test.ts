import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';

// `docker compose config` needs the compose plugin, which this machine's Docker client lacks; so the file is parsed
// and checked here, and also validated by Docker where the plugin exists.
interface ComposeFile {
  services: Record<
    string,
    {
      image?: string;
      build?: unknown;
      ports?: string[];
      healthcheck?: unknown;
      depends_on?: Record<string, { condition: string }>;
      command?: string[];
    }
  >;
}

const file = join(__dirname, '..', 'docker-compose.yml');
const compose = load(readFileSync(file, 'utf8')) as ComposeFile;

describe('compose/docker-compose.yml', () => {
  it('runs the official Kafka and Cassandra images with healthchecks on the contract ports', () => {
    const { kafka, cassandra } = compose.services;
    expect(kafka?.image).toMatch(/^apache\/kafka:4\./);
    expect(cassandra?.image).toMatch(/^cassandra:5\.0/);
    expect(kafka?.ports).toEqual(['127.0.0.1:${FLEETPULSE_KAFKA_PORT:-9092}:9092']);
    expect(cassandra?.ports).toEqual(['127.0.0.1:${FLEETPULSE_CASSANDRA_PORT:-9042}:9042']);
    expect(kafka?.healthcheck).toBeDefined();
    expect(cassandra?.healthcheck).toBeDefined();
  });

  it('creates topics and schema once both are healthy, before the services start', () => {
    const { init, ingestion, simulator } = compose.services;
    expect(init?.command).toEqual(['node', 'compose/dist/init.js']);
    expect(init?.depends_on).toEqual({
      kafka: { condition: 'service_healthy' },
      cassandra: { condition: 'service_healthy' },
    });
    expect(ingestion?.depends_on?.init?.condition).toBe('service_completed_successfully');
    expect(ingestion?.ports).toEqual([
      '127.0.0.1:${FLEETPULSE_INGESTION_PORT:-8080}:8080',
      '127.0.0.1:${FLEETPULSE_MQTT_PORT:-1883}:1883',
    ]);
    expect(simulator?.command).toEqual(['node', 'simulator/dist/main.js', '--devices', '50']);
    // Development binds loopback by default: inside a container that would be unreachable from the others.
    expect((ingestion as { environment?: Record<string, unknown> }).environment?.FLEETPULSE_INGESTION_HOST).toBe(
      '0.0.0.0',
    );
  });

  it('publishes every port on the loopback address only: opening one to the network is a choice', () => {
    for (const [name, service] of Object.entries(compose.services))
      for (const port of service.ports ?? []) expect(`${name} ${port}`).toMatch(/^\S+ 127\.0\.0\.1:/);
  });

  it('builds the services from the repository with compose/Dockerfile', () => {
    for (const name of ['init', 'ingestion', 'simulator']) {
      expect(compose.services[name]?.build).toEqual({ context: '..', dockerfile: 'compose/Dockerfile' });
    }
    const dockerfile = readFileSync(join(__dirname, '..', 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toMatch(/^RUN npm ci/m);
    expect(dockerfile).toMatch(/^RUN npx tsc -b/m);
  });

  const hasComposePlugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0;
  (hasComposePlugin ? it : it.skip)('is valid for `docker compose config` (where the compose plugin exists)', () => {
    const r = spawnSync('docker', ['compose', '-f', file, 'config', '--quiet'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
