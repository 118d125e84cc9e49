/** Prometheus metrics of the scoring service (one registry per instance, so tests can run several). */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ScoringMetrics {
  readonly registry = new Registry();
  readonly records = new Counter({
    name: 'scoring_window_records_total',
    help: 'Window records read from metrics.aggregates; final="false" ones (provisional) are never scored',
    labelNames: ['final'] as const,
    registers: [this.registry],
  });
  readonly invalid = new Counter({
    name: 'scoring_records_invalid_total',
    help: 'Kafka records skipped because they are not window records (empty, not JSON, wrong shape)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly scores = new Counter({
    name: 'scoring_scores_total',
    help: 'Scores published',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly anomalies = new Counter({
    name: 'scoring_anomalies_total',
    help: 'Anomalous scores',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly unscorable = new Counter({
    name: 'scoring_windows_unscorable_total',
    help:
      "Final window records at a model's resolution that it cannot score: a feature's metric absent " +
      '(missing-metric) or a feature value not a finite number (non-finite-feature)',
    labelNames: ['model', 'reason'] as const,
    registers: [this.registry],
  });
  readonly unscored = new Counter({
    name: 'scoring_windows_unscored_total',
    help: 'Window records with complete features whose score failed: a failed run (run-failed) or non-finite-score',
    labelNames: ['model', 'reason'] as const,
    registers: [this.registry],
  });
  readonly loads = new Counter({
    name: 'scoring_model_loads_total',
    help: 'Model files loaded (ok) or rejected',
    labelNames: ['model', 'result'] as const,
    registers: [this.registry],
  });
  readonly active = new Gauge({ name: 'scoring_models_active', help: 'Models serving', registers: [this.registry] });
  readonly batchSeconds = new Histogram({
    name: 'scoring_batch_seconds',
    help: 'From a batch of records read to its scores published and committed',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly loadSeconds = new Histogram({
    name: 'scoring_model_load_seconds',
    help: 'From a file noticed to its model checked and swapped in',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly hostRss = new Gauge({
    name: 'scoring_session_host_rss_bytes',
    help: 'RSS of the child process holding the onnxruntime sessions',
    registers: [this.registry],
  });
  readonly loopLagP99 = new Gauge({
    name: 'scoring_event_loop_lag_p99_seconds',
    help: 'Event-loop delay p99 over the last scrape interval',
    registers: [this.registry],
  });
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'scoring_' });
    this.loop.enable();
  }

  /** Event-loop delay percentiles since the last call, ms; resets the histogram. */
  takeLoopLag(): { p50: number; p99: number; max: number } {
    const r = { p50: this.loop.percentile(50) / 1e6, p99: this.loop.percentile(99) / 1e6, max: this.loop.max / 1e6 };
    this.loop.reset();
    return r;
  }

  async text(): Promise<string> {
    this.loopLagP99.set(this.takeLoopLag().p99 / 1000);
    return this.registry.metrics();
  }

  close(): void {
    this.loop.disable();
  }
}
