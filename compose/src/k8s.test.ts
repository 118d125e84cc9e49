import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { allTopics, DefaultPorts, TopicConfigs, type TopicName } from '@fleetpulse/contracts';

// deploy/k8s rendered by `kubectl kustomize` (each overlay) and checked offline: no cluster, no API server, no
// operator CRDs here, so what is checked is the invariants below on the rendered objects, and each service's own
// configuration loader run on the environment its Deployment gives it. Skipped, saying so, where kubectl is absent.
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { cpu?: string; memory?: string } };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
}
interface PodSpec {
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
}
type Workload = Obj & { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };

const repo = join(__dirname, '..', '..');
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!kubectl)
  process.stderr.write('compose/src/k8s.test.ts: kubectl not found, deploy/k8s is not rendered or checked here\n');

function render(overlay: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', join(repo, 'deploy', 'k8s', 'overlays', overlay)], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${overlay} failed: ${r.stderr}`);
  return loadAll(r.stdout).filter((o): o is Obj => o !== null && typeof o === 'object');
}

/** The environment a container gets: its ConfigMaps (envFrom), then its own env; Secrets from `secrets`. */
function containerEnv(objs: Obj[], c: Container, secrets: Record<string, Record<string, string>> = {}) {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef!.name);
      if (!cm) throw new Error(`${c.name}: no ConfigMap ${from.configMapRef.name}`);
      Object.assign(env, cm.data);
    }
    if (from.secretRef) Object.assign(env, secrets[from.secretRef.name] ?? {});
  }
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

type Loader = (env: NodeJS.ProcessEnv, argv?: readonly string[]) => unknown;
async function loaderOf(entry: string): Promise<Loader> {
  const mod = (await import(join(repo, entry.split('/')[0]!, 'src', 'config.ts'))) as { loadConfig: Loader };
  return mod.loadConfig;
}

const httpPorts: Record<string, number> = {
  ingestion: DefaultPorts.ingestionHttp,
  'stream-processor': DefaultPorts.processorHttp,
  scoring: DefaultPorts.scoringHttp,
  alerting: DefaultPorts.alertingHttp,
  'dashboard-api': DefaultPorts.dashboard,
};

const overlays = [
  { name: 'dev', image: 'fleetpulse:dev', namespace: 'fleetpulse-dev', env: 'development' },
  { name: 'production', image: 'registry.example.com/fleetpulse:0.1.0', namespace: 'fleetpulse', env: 'production' },
];

(kubectl ? describe : describe.skip).each(overlays)('deploy/k8s/overlays/$name (kubectl kustomize)', (overlay) => {
  let objs: Obj[] = [];
  const of = (kind: string) => objs.filter((o) => o.kind === kind);
  const deployments = () => of('Deployment') as Workload[];

  beforeAll(() => {
    objs = render(overlay.name);
  });

  it('renders every service as a Deployment with a Service, all in the namespace', () => {
    expect(
      deployments()
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(Object.keys(httpPorts).sort());
    for (const o of objs.filter((o) => o.kind !== 'Namespace'))
      expect(`${o.kind}/${o.metadata.name} ${o.metadata.namespace}`).toBe(
        `${o.kind}/${o.metadata.name} ${overlay.namespace}`,
      );
    for (const d of deployments()) {
      const labels = d.spec.template.metadata.labels;
      const svc = of('Service').find((s) => s.metadata.name === d.metadata.name) as
        | (Obj & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] } })
        | undefined;
      expect(svc).toBeDefined();
      for (const [k, v] of Object.entries(svc!.spec.selector)) expect(labels[k]).toBe(v);
      expect(svc!.spec.ports).toContainEqual(expect.objectContaining({ port: httpPorts[d.metadata.name] }));
    }
  });

  it('gives every Deployment probes, resources, a non-root read-only container and the image', () => {
    for (const d of deployments()) {
      const pod = d.spec.template.spec;
      const name = d.metadata.name;
      expect(`${name} ${pod.securityContext?.runAsNonRoot} ${pod.securityContext?.runAsUser}`).toBe(
        `${name} true 1000`,
      );
      for (const c of pod.containers) {
        expect(`${name} ${c.image}`).toBe(`${name} ${overlay.image}`);
        const http = c.ports?.find((p) => p.name === 'http');
        expect(`${name} ${http?.containerPort}`).toBe(`${name} ${httpPorts[name]}`);
        expect([name, c.livenessProbe?.httpGet]).toEqual([name, { path: '/healthz', port: 'http' }]);
        expect([name, c.startupProbe?.httpGet]).toEqual([name, { path: '/healthz', port: 'http' }]);
        expect([name, c.readinessProbe?.httpGet]).toEqual([name, { path: '/readyz', port: 'http' }]);
        for (const k of ['requests', 'limits'] as const) {
          expect(`${name} ${k}.cpu ${c.resources?.[k]?.cpu !== undefined}`).toBe(`${name} ${k}.cpu true`);
          expect(`${name} ${k}.memory ${c.resources?.[k]?.memory !== undefined}`).toBe(`${name} ${k}.memory true`);
        }
        expect([name, c.securityContext]).toEqual([
          name,
          expect.objectContaining({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          }),
        ]);
        // The command is a built entry point of the repository.
        expect(c.command?.slice(0, 2)).toEqual(['node', `${name}/dist/main.js`]);
        expect(existsSync(join(repo, name, 'src', 'main.ts'))).toBe(true);
      }
    }
  });

  it('gives every service the variables its own configuration requires', async () => {
    const secrets = {
      'fleetpulse-ingestion': { FLEETPULSE_TOKENS: 'device-token-0123456789' },
      'fleetpulse-dashboard': {
        FLEETPULSE_DASHBOARD_ADMIN_TOKENS: 'admin-token-0123456789abcdef',
        FLEETPULSE_DASHBOARD_SESSION_SECRET: 'x'.repeat(32),
      },
      'fleetpulse-alerting': { FLEETPULSE_ALERT_WEBHOOK_SECRET: 'webhook-secret-0123456789' },
    };
    for (const d of deployments()) {
      const c = d.spec.template.spec.containers[0]!;
      const load = await loaderOf(c.command![1]!);
      const env = containerEnv(objs, c);
      expect(`${d.metadata.name} ${env.FLEETPULSE_ENV}`).toBe(`${d.metadata.name} ${overlay.env}`);
      if (overlay.env === 'development') expect(() => load(env)).not.toThrow();
      const withSecrets = containerEnv(objs, c, secrets);
      let config: unknown;
      expect(() => (config = load(withSecrets))).not.toThrow();
      // In a pod, nothing may fall back to a loopback default.
      expect(`${d.metadata.name} ${JSON.stringify(config)}`).not.toMatch(/127\.0\.0\.1|localhost/);
    }
    if (overlay.env === 'production') {
      // No token works until the Secrets exist, and a pod does not start without its Secret.
      for (const name of ['ingestion', 'alerting', 'dashboard-api']) {
        const c = deployments().find((d) => d.metadata.name === name)!.spec.template.spec.containers[0]!;
        const load = await loaderOf(c.command![1]!);
        expect(() => load(containerEnv(objs, c))).toThrow(/FLEETPULSE_/);
        expect([name, c.envFrom?.find((e) => e.secretRef)?.secretRef]).toEqual([
          name,
          expect.objectContaining({ optional: false }),
        ]);
      }
    }
  });

  it('runs Kafka with Strimzi: one KRaft node pool of 3, replication factor 3, min.insync.replicas 2', () => {
    const [kafka] = of('Kafka') as (Obj & { spec: { kafka: { config: Record<string, unknown> } } })[];
    const pools = of('KafkaNodePool') as (Obj & { spec: { replicas: number; roles: string[] } })[];
    expect(kafka).toBeDefined();
    expect(pools.reduce((n, p) => n + (p.spec.roles.includes('broker') ? p.spec.replicas : 0), 0)).toBe(3);
    expect(pools.reduce((n, p) => n + (p.spec.roles.includes('controller') ? p.spec.replicas : 0), 0)).toBe(3);
    for (const p of pools) expect(p.metadata.labels?.['strimzi.io/cluster']).toBe(kafka!.metadata.name);
    expect(kafka!.spec.kafka.config).toEqual(
      expect.objectContaining({
        'default.replication.factor': 3,
        'min.insync.replicas': 2,
        'offsets.topic.replication.factor': 3,
        'transaction.state.log.min.isr': 2,
        'auto.create.topics.enable': false,
      }),
    );
    // The services' brokers are the cluster's bootstrap Service, which Strimzi names after the Kafka resource.
    const cm = of('ConfigMap').find((o) => o.metadata.name.startsWith('fleetpulse-config'))!;
    expect(cm.data?.FLEETPULSE_KAFKA_BROKERS).toBe(`${kafka!.metadata.name}-kafka-bootstrap:9092`);
  });

  it('has a KafkaTopic for every contract topic, with 3 replicas and min.insync.replicas 2', () => {
    const topics = of('KafkaTopic') as (Obj & {
      spec: { topicName?: string; partitions: number; replicas: number; config?: Record<string, unknown> };
    })[];
    const byName = new Map(topics.map((t) => [t.spec.topicName ?? t.metadata.name, t]));
    expect([...byName.keys()].sort()).toEqual([...allTopics].sort());
    const kafka = of('Kafka')[0]!;
    for (const topic of allTopics) {
      const t = byName.get(topic)!;
      expect([topic, t.spec.replicas, t.spec.partitions > 0, t.spec.config?.['min.insync.replicas']]).toEqual([
        topic,
        3,
        true,
        2,
      ]);
      expect(t.metadata.labels?.['strimzi.io/cluster']).toBe(kafka.metadata.name);
      for (const [k, v] of Object.entries(TopicConfigs[topic as TopicName] ?? {}))
        expect([topic, k, String(t.spec.config?.[k])]).toEqual([topic, k, v]);
    }
  });

  it('runs Cassandra with K8ssandra (3 nodes) and applies the schema with 3 replicas in its data center', () => {
    const [k8c] = of('K8ssandraCluster') as (Obj & {
      spec: { cassandra: { datacenters: { metadata: { name: string }; size: number }[] } };
    })[];
    expect(k8c).toBeDefined();
    const dcs = k8c!.spec.cassandra.datacenters;
    expect(dcs.map((dc) => dc.size)).toEqual([3]);
    const cm = of('ConfigMap').find((o) => o.metadata.name.startsWith('fleetpulse-config'))!;
    expect(cm.data?.FLEETPULSE_CASSANDRA_DC).toBe(dcs[0]!.metadata.name);
    expect(cm.data?.FLEETPULSE_CASSANDRA_CONTACT_POINTS).toBe(
      `${k8c!.metadata.name}-${dcs[0]!.metadata.name}-service:9042`,
    );
    const job = (of('Job') as Workload[]).find((j) => j.metadata.name === 'fleetpulse-schema')!;
    const c = job.spec.template.spec.containers[0]!;
    const env = containerEnv(objs, c);
    expect(env.FLEETPULSE_REPLICATION_FACTOR).toBe('3');
    expect(c.image).toBe(overlay.image);
    expect(c.command?.[2]).toMatch(/applySchema\(/);
    expect(c.command?.[2]).toMatch(/NetworkTopologyStrategy/);
    expect(job.spec.template.spec.securityContext?.runAsNonRoot).toBe(true);
  });
});

describe('deploy/k8s', () => {
  it(kubectl ? 'is rendered by kubectl here' : 'is not rendered: kubectl not found (skipped above)', () => {
    expect(typeof kubectl).toBe('boolean');
  });
});
