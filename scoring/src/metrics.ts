/**
 * Prometheus metrics of the scoring service (one registry per instance, so tests can run several). The gauges read
 * at scrape time (session host RSS, event-loop lag) are filled by prom-client's `collect`, so any scrape of the
 * registry (the ops server's /metrics, {@link ScoringMetrics.text}) sees them fresh.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { ServiceRegistry } from '@fleetpulse/runtime/metrics';
import { Gauge } from 'prom-client';

export class ScoringMetrics extends ServiceRegistry {
  readonly records = this.counter(
    'scoring_window_records_total',
    'Window records read from metrics.aggregates; final="false" ones (provisional) are never scored',
    ['final'],
  );
  readonly invalid = this.counter(
    'scoring_records_invalid_total',
    'Kafka records skipped because they are not window records (empty, not JSON, wrong shape)',
    ['reason'],
  );
  readonly scores = this.counter('scoring_scores_total', 'Scores published', ['model', 'version']);
  readonly anomalies = this.counter('scoring_anomalies_total', 'Anomalous scores', ['model']);
  readonly unscorable = this.counter(
    'scoring_windows_unscorable_total',
    "Final window records at a model's resolution that it cannot score: a feature's metric absent " +
      '(missing-metric) or a feature value not a finite number (non-finite-feature)',
    ['model', 'reason'],
  );
  readonly unscored = this.counter(
    'scoring_windows_unscored_total',
    'Window records not scored by a model: a failed run (run-failed), a non-finite-score, or the model quarantined ' +
      'for crashing the session host (quarantined: every final record at its resolution, skipped and committed)',
    ['model', 'reason'],
  );
  readonly hostCrashes = this.counter(
    'scoring_session_host_crashes_total',
    'Session host deaths while running a model (counted against it; quarantined at FLEETPULSE_SCORING_QUARANTINE_CRASHES)',
    ['model'],
  );
  readonly quarantined = this.gauge(
    'scoring_models_quarantined',
    'Models out of service for crashing the session host',
  );
  readonly repeats = this.counter(
    'scoring_windows_repeated_total',
    'Final window records passed over unscored: the partition scored the same record under the same models lately',
  );
  readonly deliveryFailures = this.counter(
    'scoring_delivery_failures_total',
    'Steps whose scores could not be delivered (Kafka or Cassandra): the partition is re-read from its last commit',
  );
  readonly loads = this.counter('scoring_model_loads_total', 'Model files loaded (ok) or rejected', [
    'model',
    'result',
  ]);
  readonly active = this.gauge('scoring_models_active', 'Models serving');
  readonly batchSeconds = this.histogram(
    'scoring_batch_seconds',
    'From a batch of records read to its scores published and committed',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly stageDelay = this.histogram(
    'scoring_stage_delay_seconds',
    "Pipeline stage delay: a window record's Kafka timestamp to its step's scores acknowledged on anomaly.scores",
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  readonly loadSeconds = this.histogram(
    'scoring_model_load_seconds',
    'From a file noticed to its model checked and swapped in',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  /** Asked at each scrape; 0 until the service names its session host ({@link sampleHostRss}). */
  private hostRssOf: () => Promise<number> = () => Promise.resolve(0);
  readonly hostRss = this.scraped(
    'scoring_session_host_rss_bytes',
    'RSS of the child process holding the onnxruntime sessions',
    async () => this.hostRssOf(),
  );
  readonly loopLagP99 = this.scraped(
    'scoring_event_loop_lag_p99_seconds',
    'Event-loop delay p99 over the last scrape interval',
    async () => this.takeLoopLag().p99 / 1000,
  );

  constructor() {
    super('scoring_');
    this.loop.enable();
  }

  /** Where the session host's RSS comes from (SessionHost.childRss). */
  sampleHostRss(rss: () => Promise<number>): void {
    this.hostRssOf = rss;
  }

  /** A gauge set from `read` whenever the registry is scraped. */
  private scraped(name: string, help: string, read: () => Promise<number>): Gauge {
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        this.set(await read());
      },
    });
  }

  /** Event-loop delay percentiles since the last call, ms; resets the histogram. */
  takeLoopLag(): { p50: number; p99: number; max: number } {
    const r = { p50: this.loop.percentile(50) / 1e6, p99: this.loop.percentile(99) / 1e6, max: this.loop.max / 1e6 };
    this.loop.reset();
    return r;
  }

  /** The Prometheus text, as /metrics answers it. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.loop.disable();
  }
}
