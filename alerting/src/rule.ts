/**
 * Alert rules (docs/contract.md, "Alerts (v2)"): `parseRule` checks a rule as a client sends it (the body of
 * `POST /api/alerts/rules`) and names every bad field; `compileRule` turns a stored rule into what the evaluator
 * runs. The shapes are the contract's (`contracts/schema/alert-rule.schema.json`).
 */
import {
  DeviceGlobSyntax,
  MetricStatNames,
  resolutionMs,
  type AlertRule,
  type MetricStatName,
} from '@fleetpulse/contracts';

/** A rule as stored: the store has given it an id and a creation time. */
export type Rule = AlertRule & { id: string; createdAt: number };
/** A rule to create: what `parseRule` returns (no id yet). */
export type NewRule = Omit<AlertRule, 'id' | 'createdAt'>;

export const RuleBounds = {
  nameMaxChars: 100,
  webhookMaxChars: 2048,
  modelMaxChars: 128,
  forWindowsMax: 1000,
  /** Window sizes up to a day. */
  resolutionMaxSeconds: 86_400,
} as const;

export type ParseResult = { ok: true; rule: NewRule } | { ok: false; errors: string[] };

const Ops = ['>', '>=', '<', '<='] as const;
const MetricName = /^[A-Za-z0-9._-]{1,64}$/;
const ModelName = /^[A-Za-z0-9._-]+$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownFields(o: Record<string, unknown>, allowed: readonly string[], prefix: string, errors: string[]) {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) errors.push(`${prefix}${k}: unknown field`);
}

/** `temp.max` -> ["temp", "max"]; the metric may itself hold dots, the statistic is after the last one. */
export function splitFeature(feature: string): { metric: string; stat: MetricStatName } | null {
  const dot = feature.lastIndexOf('.');
  if (dot <= 0) return null;
  const metric = feature.slice(0, dot);
  const stat = feature.slice(dot + 1);
  if (!MetricName.test(metric) || !(MetricStatNames as readonly string[]).includes(stat)) return null;
  return { metric, stat: stat as MetricStatName };
}

/**
 * A rule to create from untrusted JSON (a parsed body, or its text): the rule, or every problem, each naming its
 * field (`when.forWindows: must be a whole number from 1 to 1000`). `forWindows` may be left out (1).
 */
export function parseRule(input: unknown): ParseResult {
  let json = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input) as unknown;
    } catch (e) {
      return { ok: false, errors: [`body: not JSON (${(e as Error).message})`] };
    }
  }
  const errors: string[] = [];
  if (!isObject(json)) return { ok: false, errors: ['rule: must be a JSON object'] };
  unknownFields(json, ['name', 'devices', 'resolution', 'when', 'webhook'], '', errors);

  const { name, devices, resolution, when, webhook } = json;
  if (typeof name !== 'string') errors.push('name: required, a string');
  else if (name.trim().length === 0 || name.length > RuleBounds.nameMaxChars)
    errors.push(`name: must be 1-${RuleBounds.nameMaxChars} characters, not blank`);
  // eslint-disable-next-line no-control-regex
  else if (/[\u0000-\u001f\u007f]/.test(name)) errors.push('name: must not hold control characters');

  if (typeof devices !== 'string') errors.push('devices: required, a device glob such as "sensor-*"');
  else if (!DeviceGlobSyntax.test(devices))
    errors.push('devices: a glob is 1-128 characters of [A-Za-z0-9._:-] and the wildcards * ?');

  if (typeof resolution !== 'string') errors.push('resolution: required, such as "10s"');
  else if (!/^[1-9][0-9]{0,5}s$/.test(resolution) || resolutionMs(resolution) > RuleBounds.resolutionMaxSeconds * 1000)
    errors.push(`resolution: must be <seconds>s, from 1s to ${RuleBounds.resolutionMaxSeconds}s`);

  const condition = parseCondition(when, errors);

  if (typeof webhook !== 'string') errors.push('webhook: required, an http(s) URL');
  else if (webhook.length > RuleBounds.webhookMaxChars)
    errors.push(`webhook: at most ${RuleBounds.webhookMaxChars} characters`);
  else {
    let url: URL | null = null;
    try {
      url = new URL(webhook);
    } catch {
      errors.push('webhook: not a URL');
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:')
      errors.push(`webhook: must be http or https, not ${url.protocol.replace(/:$/, '')}`);
    else if (url && (url.username !== '' || url.password !== ''))
      errors.push('webhook: must not carry a user or password (receivers check the signature header)');
  }

  if (errors.length > 0 || condition === null) return { ok: false, errors };
  return {
    ok: true,
    rule: {
      name: name as string,
      devices: devices as string,
      resolution: resolution as string,
      when: condition,
      webhook: webhook as string,
    },
  };
}

function parseCondition(when: unknown, errors: string[]): AlertRule['when'] | null {
  if (!isObject(when)) {
    errors.push('when: required, {"feature", "op", "value", "forWindows"} or {"anomaly": {"model"?}}');
    return null;
  }
  if ('anomaly' in when) {
    const before = errors.length;
    unknownFields(when, ['anomaly'], 'when.', errors);
    const a = when.anomaly;
    if (!isObject(a)) {
      errors.push('when.anomaly: must be an object, {} for any model');
      return null;
    }
    unknownFields(a, ['model'], 'when.anomaly.', errors);
    if (a.model !== undefined) {
      if (typeof a.model !== 'string' || !ModelName.test(a.model) || a.model.length > RuleBounds.modelMaxChars)
        errors.push(`when.anomaly.model: 1-${RuleBounds.modelMaxChars} characters of [A-Za-z0-9._-]`);
    }
    if (errors.length > before) return null;
    return { anomaly: a.model === undefined ? {} : { model: a.model as string } };
  }
  const before = errors.length;
  unknownFields(when, ['feature', 'op', 'value', 'forWindows'], 'when.', errors);
  const { feature, op, value, forWindows = 1 } = when;
  if (typeof feature !== 'string') errors.push('when.feature: required, metric.stat such as "temp.max"');
  else if (splitFeature(feature) === null)
    errors.push(`when.feature: must be <metric>.<stat>, the stat one of ${MetricStatNames.join(', ')}`);
  if (typeof op !== 'string' || !(Ops as readonly string[]).includes(op))
    errors.push(`when.op: must be one of ${Ops.join(' ')}`);
  if (typeof value !== 'number' || !Number.isFinite(value)) errors.push('when.value: required, a finite number');
  if (
    typeof forWindows !== 'number' ||
    !Number.isInteger(forWindows) ||
    forWindows < 1 ||
    forWindows > RuleBounds.forWindowsMax
  )
    errors.push(`when.forWindows: must be a whole number from 1 to ${RuleBounds.forWindowsMax}`);
  if (errors.length > before) return null;
  return {
    feature: feature as string,
    op: op as (typeof Ops)[number],
    value: value as number,
    forWindows: forWindows as number,
  };
}

/** What the evaluator runs: a rule with its feature split and its window size in ms. */
export type CompiledRule =
  | {
      kind: 'threshold';
      rule: Rule;
      metric: string;
      stat: MetricStatName;
      op: (typeof Ops)[number];
      value: number;
      forWindows: number;
      resolutionMs: number;
    }
  | { kind: 'anomaly'; rule: Rule; model: string | undefined; resolutionMs: number };

export function compileRule(rule: Rule): CompiledRule {
  const w = rule.when;
  if ('anomaly' in w)
    return { kind: 'anomaly', rule, model: w.anomaly.model, resolutionMs: resolutionMs(rule.resolution) };
  const f = splitFeature(w.feature);
  if (!f) throw new Error(`rule ${rule.id}: bad feature ${w.feature}`);
  return {
    kind: 'threshold',
    rule,
    metric: f.metric,
    stat: f.stat,
    op: w.op,
    value: w.value,
    forWindows: w.forWindows,
    resolutionMs: resolutionMs(rule.resolution),
  };
}

export function compare(op: (typeof Ops)[number], a: number, b: number): boolean {
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
  }
}
