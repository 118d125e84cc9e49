/**
 * The evaluator's state machine, with no I/O: one rule and one device, fed that device's final window records (threshold
 * rules) or scores (anomaly rules) in partition order. docs/contract.md, "Alerts (v2)", says what it promises:
 *
 * - threshold: the feature holds for `forWindows` consecutive windows (each `windowStart` one resolution after the
 *   last; a gap starts the count again at the window after it) -> one `firing`; the first window after that in which
 *   it does not hold (the metric absent included) -> one `resolved`. A gap alone resolves nothing.
 * - anomaly: an anomalous score (of the rule's model, or any) -> one `firing`; the next non-anomalous score of the
 *   model that fired it, for a later window -> one `resolved`.
 * - A record the state has already seen is passed over: a window not after the last one (threshold), an older window
 *   (anomaly), or a Kafka position at or before the stored one. So records read again after a crash, and the older
 *   windows a replay republishes, change nothing.
 * - A transition's id is a digest of rule, device, episode (the window that fired) and state: made again, it is the
 *   same id.
 */
import { createHash } from 'node:crypto';
import { globMatch, type AlertTransition, type AnomalyScore, type WindowRecord } from '@fleetpulse/contracts';
import { compare, type CompiledRule } from './rule';

export interface AlertState {
  /** The newest window evaluated, epoch ms; null before the first. */
  lastWindowStart: number | null;
  /** Where the last record evaluated was read: `<topic>:<partition>` and its offset. */
  lastSource: string | null;
  lastOffset: bigint | null;
  /** Consecutive windows in which the threshold held, up to the last one. */
  streak: number;
  firing: boolean;
  /** The window that fired the open (or last) episode. */
  episode: number | null;
  /** Anomaly rules: the model that fired the open episode. */
  model: string | null;
}

export const idleState = (): AlertState => ({
  lastWindowStart: null,
  lastSource: null,
  lastOffset: null,
  streak: 0,
  firing: false,
  episode: null,
  model: null,
});

/** Where a record was read. */
export interface Position {
  source: string;
  offset: bigint;
}

export interface Step {
  state: AlertState;
  transition?: AlertTransition;
}

/** The transition's id: hex SHA-256 (first 128 bits) of rule, device, episode and state. */
export function transitionId(ruleId: string, deviceId: string, episode: number, state: 'firing' | 'resolved'): string {
  return createHash('sha256')
    .update(JSON.stringify([ruleId, deviceId, episode, state]))
    .digest('hex')
    .slice(0, 32);
}

export function ruleMatchesWindow(c: CompiledRule, r: WindowRecord): boolean {
  return (
    c.kind === 'threshold' && r.final && r.resolution === c.rule.resolution && globMatch(c.rule.devices, r.deviceId)
  );
}

export function ruleMatchesScore(c: CompiledRule, s: AnomalyScore): boolean {
  return (
    c.kind === 'anomaly' &&
    s.resolution === c.rule.resolution &&
    (c.model === undefined || c.model === s.model) &&
    globMatch(c.rule.devices, s.deviceId)
  );
}

const readBefore = (s: AlertState, at: Position): boolean =>
  s.lastSource === at.source && s.lastOffset !== null && at.offset <= s.lastOffset;

function transition(
  c: CompiledRule,
  deviceId: string,
  state: 'firing' | 'resolved',
  episode: number,
  windowStart: number,
  value: number | null,
  now: number,
  extra: { model?: string | null; reason?: AlertTransition['reason'] } = {},
): AlertTransition {
  return {
    id: transitionId(c.rule.id, deviceId, episode, state),
    ruleId: c.rule.id,
    ruleName: c.rule.name,
    deviceId,
    resolution: c.rule.resolution,
    state,
    episode,
    windowStart,
    value,
    at: now,
    ...(extra.model ? { model: extra.model } : {}),
    reason: extra.reason ?? 'condition',
  };
}

/** A threshold rule fed one final window record of its device; null when the record was already seen. */
export function evaluateWindow(
  c: CompiledRule & { kind: 'threshold' },
  prev: AlertState,
  r: WindowRecord,
  at: Position,
  now: number,
): Step | null {
  if ((prev.lastWindowStart !== null && r.windowStart <= prev.lastWindowStart) || readBefore(prev, at)) return null;
  const stats = Object.prototype.hasOwnProperty.call(r.metrics, c.metric) ? r.metrics[c.metric] : undefined;
  const value = stats ? stats[c.stat] : null;
  const holds = value !== null && compare(c.op, value, c.value);
  const next: AlertState = { ...prev, lastWindowStart: r.windowStart, lastSource: at.source, lastOffset: at.offset };
  if (holds) {
    const consecutive = prev.lastWindowStart !== null && r.windowStart === prev.lastWindowStart + c.resolutionMs;
    next.streak = consecutive ? Math.min(prev.streak + 1, c.forWindows) : 1;
    if (!prev.firing && next.streak >= c.forWindows) {
      next.firing = true;
      next.episode = r.windowStart;
      return { state: next, transition: transition(c, r.deviceId, 'firing', r.windowStart, r.windowStart, value, now) };
    }
    return { state: next };
  }
  next.streak = 0;
  if (prev.firing && prev.episode !== null) {
    next.firing = false;
    return { state: next, transition: transition(c, r.deviceId, 'resolved', prev.episode, r.windowStart, value, now) };
  }
  return { state: next };
}

/** An anomaly rule fed one score of its device; null when the score was already seen. */
export function evaluateScore(
  c: CompiledRule & { kind: 'anomaly' },
  prev: AlertState,
  s: AnomalyScore,
  at: Position,
  now: number,
): Step | null {
  // Scores of several models share a window: an older window is passed over, the same one is not.
  if ((prev.lastWindowStart !== null && s.windowStart < prev.lastWindowStart) || readBefore(prev, at)) return null;
  const next: AlertState = {
    ...prev,
    lastWindowStart: Math.max(prev.lastWindowStart ?? s.windowStart, s.windowStart),
    lastSource: at.source,
    lastOffset: at.offset,
  };
  if (s.anomalous && !prev.firing) {
    next.firing = true;
    next.episode = s.windowStart;
    next.model = s.model;
    return {
      state: next,
      transition: transition(c, s.deviceId, 'firing', s.windowStart, s.windowStart, s.score, now, { model: s.model }),
    };
  }
  if (!s.anomalous && prev.firing && prev.episode !== null && s.model === prev.model && s.windowStart > prev.episode) {
    next.firing = false;
    return {
      state: next,
      transition: transition(c, s.deviceId, 'resolved', prev.episode, s.windowStart, s.score, now, { model: s.model }),
    };
  }
  return { state: next };
}

/** The rule was deleted while this device's episode was open: it ends, `reason: "rule-deleted"`, value null. */
export function closeDeleted(c: CompiledRule, deviceId: string, s: AlertState, now: number): AlertTransition | null {
  if (!s.firing || s.episode === null) return null;
  return transition(c, deviceId, 'resolved', s.episode, s.lastWindowStart ?? s.episode, null, now, {
    model: s.model,
    reason: 'rule-deleted',
  });
}
