/**
 * @fleetpulse/alerting: the alerting service, and what the dashboard's REST routes need of it: `parseRule` (a rule
 * to create, or every problem named), `RuleStore` (create, list, get, delete on a cassandra-driver Client) and the
 * history's rows as transitions (`transitionFromRow`, `dayOf`).
 */
export {
  parseRule,
  splitFeature,
  compileRule,
  RuleBounds,
  type Rule,
  type NewRule,
  type ParseResult,
  type CompiledRule,
} from './rule';
export { RuleStore, TooManyRules, DefaultMaxRules } from './rule-store';
export { AlertStore, transitionFromRow, dayOf } from './storage';
export {
  evaluateWindow,
  evaluateScore,
  closeDeleted,
  transitionId,
  idleState,
  ruleMatchesWindow,
  ruleMatchesScore,
  type AlertState,
  type Position,
} from './evaluator';
export { sign, verifySignature, SignatureHeader, DeliveryHeader } from './signature';
export { WebhookDeliverer, Semaphore, type DelivererOptions } from './deliverer';
export { EvaluatorConsumer, type EvaluatorOptions } from './evaluator-consumer';
export { startAlerting, StoreUnavailable, type RunningAlerting } from './service';
export { loadConfig, ConfigError, helpText, DevWebhookSecret, type AlertingConfig } from './config';
export { AlertingMetrics } from './metrics';
