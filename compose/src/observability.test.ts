import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { DefaultPorts } from '@fleetpulse/contracts';

// compose/grafana/fleetpulse-dashboard.json and compose/prometheus/prometheus.yml against what the services really
// export: the metric names are read from their declarations (`this.counter('name', ...)` etc. in */src/metrics*.ts),
// so a renamed metric or a typo in a query fails here, not as an empty panel. No Prometheus or Grafana runs here.
const repo = join(__dirname, '..', '..');
type Kind = 'counter' | 'gauge' | 'histogram';

function declaredMetrics(): Map<string, { kind: Kind; file: string }> {
  const out = new Map<string, { kind: Kind; file: string }>();
  for (const ws of readdirSync(repo, { withFileTypes: true })) {
    const src = join(repo, ws.name, 'src');
    if (!ws.isDirectory() || ws.name === 'node_modules' || !existsSync(src)) continue;
    for (const f of readdirSync(src).filter((f) => /^metrics.*\.ts$/.test(f) && !f.endsWith('.test.ts'))) {
      const text = readFileSync(join(src, f), 'utf8');
      for (const m of text.matchAll(/\.(counter|gauge|histogram)(?:<[^>]*>)?\(\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)'/g))
        out.set(m[2]!, { kind: m[1] as Kind, file: `${ws.name}/src/${f}` });
    }
  }
  return out;
}

/** The metric names a PromQL expression reads (functions, keywords, labels, grouping and durations left out). */
function metricsOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // grouping labels
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const names: string[] = [];
  for (const m of stripped.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2]) continue; // a function
    if (/^(by|without|and|or|unless|offset|bool|on|ignoring|inf|nan)$/i.test(m[1]!)) continue;
    names.push(m[1]!);
  }
  return names;
}

interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
const dashboardFile = join(__dirname, '..', 'grafana', 'fleetpulse-dashboard.json');
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title ?? '', expr: t.expr })));

describe('compose/grafana/fleetpulse-dashboard.json', () => {
  const declared = declaredMetrics();

  it('finds the metric declarations of every service that has /metrics', () => {
    const files = new Set([...declared.values()].map((d) => d.file.split('/')[0]));
    for (const ws of ['ingestion', 'stream-processor', 'scoring', 'dashboard-api', 'alerting'])
      expect(files).toContain(ws);
    expect(declared.get('fleetpulse_processor_write_seconds')?.kind).toBe('histogram');
  });

  it('queries only metrics the services declare', () => {
    expect(queries.length).toBeGreaterThan(10);
    for (const { panel, expr } of queries) {
      const names = metricsOf(expr);
      expect(`${panel}: ${names.length}`).not.toBe(`${panel}: 0`);
      for (const name of names) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const found = declared.get(name) ?? (declared.get(base)?.kind === 'histogram' ? declared.get(base) : undefined);
        expect(`${panel}: ${name} ${found ? 'declared' : 'NOT declared in any */src/metrics*.ts'}`).toBe(
          `${panel}: ${name} declared`,
        );
        if (expr.includes('histogram_quantile') && found?.kind === 'histogram') expect(name).toMatch(/_bucket$/);
      }
    }
  });

  it('shows what operators ask for: intake, processing, lag, write latency, scores, sockets, alerts', () => {
    const used = new Set(queries.flatMap((q) => metricsOf(q.expr)));
    for (const name of [
      'fleetpulse_ingestion_events_accepted_total',
      'fleetpulse_ingestion_events_rejected_total',
      'fleetpulse_processor_events_total',
      'fleetpulse_processor_consumer_lag',
      'fleetpulse_processor_write_seconds_bucket',
      'scoring_scores_total',
      'fleetpulse_dashboard_live_sockets',
      'alerting_deliveries_total',
    ])
      expect(used).toContain(name);
    // The end-to-end delay of every stage (docs/contract.md, "Traces and stage delays").
    for (const name of [
      'fleetpulse_ingestion_stage_delay_seconds_bucket',
      'fleetpulse_processor_stage_delay_seconds_bucket',
      'scoring_stage_delay_seconds_bucket',
      'fleetpulse_dashboard_stage_delay_seconds_bucket',
    ])
      expect(used).toContain(name);
    // Consumer lag is shown per partition.
    expect(queries.find((q) => q.expr.includes('fleetpulse_processor_consumer_lag'))?.expr).toMatch(/by \(partition\)/);
  });

  it('is a dashboard Grafana can import: unique panel ids, one data source variable', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.uid).toBe('fleetpulse');
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    for (const p of panels.filter((p) => p.type !== 'row')) expect(p.datasource?.uid).toBe('${datasource}');
  });
});

describe('compose/prometheus/prometheus.yml', () => {
  const prometheus = load(readFileSync(join(__dirname, '..', 'prometheus', 'prometheus.yml'), 'utf8')) as {
    scrape_configs: {
      job_name: string;
      metrics_path?: string;
      dns_sd_configs: { names: string[]; port: number }[];
    }[];
  };
  const compose = load(readFileSync(join(__dirname, '..', 'docker-compose.yml'), 'utf8')) as {
    services: Record<
      string,
      { command?: string[]; profiles?: string[]; volumes?: string[]; environment?: Record<string, unknown> }
    >;
  };
  const ports: Record<string, number> = {
    ingestion: DefaultPorts.ingestionHttp,
    'stream-processor': DefaultPorts.processorHttp,
    scoring: DefaultPorts.scoringHttp,
    alerting: DefaultPorts.alertingHttp,
    'dashboard-api': DefaultPorts.dashboard,
  };

  it('scrapes every compose service that has /metrics, on its port, in both stacks', () => {
    const targets = new Map<string, number>();
    for (const job of prometheus.scrape_configs) {
      expect(job.metrics_path ?? '/metrics').toBe('/metrics');
      for (const sd of job.dns_sd_configs) for (const n of sd.names) targets.set(n, sd.port);
    }
    for (const [name, s] of Object.entries(compose.services)) {
      const workspace = s.command?.[1]?.split('/')[0] ?? '';
      if (ports[workspace] === undefined) continue;
      expect(`${name} ${targets.get(name)}`).toBe(`${name} ${ports[workspace]}`);
    }
  });

  it('is mounted by the observability profile, with the dashboard Grafana provisions', () => {
    expect(compose.services.prometheus?.profiles).toEqual(['observability']);
    expect(compose.services.prometheus?.volumes).toContain(
      './prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    );
    const grafana = compose.services.grafana!;
    const mount = grafana.volumes?.find((v) => v.startsWith('./grafana/fleetpulse-dashboard.json:'));
    const provider = load(
      readFileSync(join(__dirname, '..', 'grafana', 'provisioning', 'dashboards', 'fleetpulse.yml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    expect(mount?.split(':')[1]).toBe(`${provider.providers[0]!.options.path}/fleetpulse-dashboard.json`);
  });
});

describe('traces in compose and Kubernetes', () => {
  const compose = load(readFileSync(join(__dirname, '..', 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { command?: string[]; profiles?: string[]; environment?: Record<string, unknown> }>;
  };
  const traced = ['ingestion', 'stream-processor', 'scoring', 'alerting', 'dashboard-api'];

  it('passes the OTLP endpoint to every traced service of both stacks, and runs Jaeger in the observability profile', () => {
    const seen = new Set<string>();
    for (const [name, s] of Object.entries(compose.services)) {
      const workspace = s.command?.[1]?.split('/')[0] ?? '';
      if (!traced.includes(workspace)) continue;
      seen.add(workspace);
      expect(`${name}: ${String(s.environment?.OTEL_EXPORTER_OTLP_ENDPOINT)}`).toBe(
        `${name}: \${OTEL_EXPORTER_OTLP_ENDPOINT:-}`,
      );
    }
    expect([...seen].sort()).toEqual([...traced].sort());
    const jaeger = compose.services.jaeger!;
    expect(jaeger.profiles).toEqual(['observability']);
    // The endpoint the compose file names (http://jaeger:4318) is its OTLP/HTTP receiver, open beyond its loopback.
    expect(jaeger.command).toContain('receivers.otlp.protocols.http.endpoint=0.0.0.0:4318');
  });

  it('gives the Kubernetes services the variables, empty (no traces) until set', () => {
    const k = load(readFileSync(join(repo, 'deploy', 'k8s', 'base', 'kustomization.yaml'), 'utf8')) as {
      configMapGenerator: { name: string; literals: string[] }[];
    };
    const literals = k.configMapGenerator.find((g) => g.name === 'fleetpulse-config')!.literals;
    expect(literals).toContain('OTEL_EXPORTER_OTLP_ENDPOINT=');
    expect(literals.find((l) => l.startsWith('FLEETPULSE_TRACE_SAMPLE_RATIO='))).toMatch(/=0(\.\d+)?$|=1$/);
  });
});

describe('metricsOf', () => {
  it('reads metric names and leaves out functions, labels, grouping and variables', () => {
    expect(
      metricsOf(
        'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{stack=~"$stack"}[$__rate_interval])))',
      ),
    ).toEqual(['a_seconds_bucket']);
    expect(metricsOf('sum(x_total) / ignoring(q) y + max without (p) (z{a="b"}) offset 5m')).toEqual([
      'x_total',
      'y',
      'z',
    ]);
  });
});
