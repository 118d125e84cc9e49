/** Prometheus metrics of the alerting service (one registry per instance, so tests can run several). */
import { ServiceRegistry } from '@fleetpulse/runtime/metrics';

export class AlertingMetrics extends ServiceRegistry {
  readonly rules = this.gauge('alerting_rules', 'Alert rules in force, as last read from Cassandra', ['kind']);
  readonly records = this.counter(
    'alerting_records_total',
    'Records read by the evaluator: window (final window records), score, skipped (provisional or not a record), ' +
      'unmatched (keyed by a device no rule matches: not parsed)',
    ['kind'],
  );
  readonly transitions = this.counter('alerting_transitions_total', 'Transitions made by the evaluator', [
    'state',
    'reason',
  ]);
  readonly evaluationFailures = this.counter(
    'alerting_evaluation_failures_total',
    'Evaluator steps whose state or transitions could not be written: the partition is read again from its commit',
  );
  readonly deliveries = this.counter(
    'alerting_deliveries_total',
    'Transitions taken off the alerts topic by the webhook deliverer, by outcome: delivered (2xx), expired (gave up ' +
      'after FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS), rule-deleted (no rule to send it to, or an episode ended by a ' +
      'delete: not sent), duplicate (an id this process already delivered), invalid (not a transition)',
    ['outcome'],
  );
  readonly attempts = this.counter(
    'alerting_delivery_attempts_total',
    'Webhook POSTs, by result: 2xx, status (another HTTP status), timeout, error (no answer: refused, reset, DNS)',
    ['result'],
  );
  readonly pending = this.gauge(
    'alerting_deliveries_pending',
    'Transitions read from the alerts topic and not yet delivered (the backlog held in memory)',
  );
  readonly oldestPending = this.gauge(
    'alerting_delivery_oldest_pending_seconds',
    'Age (from the transition\'s "at") of the oldest transition waiting for its webhook; 0 when none waits',
  );
  readonly lag = this.histogram(
    'alerting_delivery_lag_seconds',
    'From a transition made (its "at") to its webhook answering 2xx',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
  );

  constructor() {
    super('alerting_');
  }
}
