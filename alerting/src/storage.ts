/**
 * The evaluator's Cassandra side (contracts/cql/005-alerts.cql): its state per rule and device (`alert_state`) and the
 * transition history (`alerts_by_day`, `alerts_by_device`, partitioned by the UTC day of the transition's window).
 * Every write is an upsert keyed by what the evaluator computes deterministically, so writing again after a crash
 * leaves the same rows.
 */
import type { AlertTransition } from '@fleetpulse/contracts';
import { types, type Client } from 'cassandra-driver';
import { idleState, type AlertState } from './evaluator';

const DayMs = 86_400_000;
/** Point reads and writes in flight at once. */
const Concurrency = 32;

export const stateKey = (ruleId: string, deviceId: string): string => `${ruleId}\u0000${deviceId}`;

const num = (v: unknown): number | null =>
  v === null || v === undefined ? null : typeof v === 'number' ? v : Number((v as types.Long).toString());

/** Runs `f` over `items`, `limit` at a time. */
export async function eachLimited<T>(items: readonly T[], limit: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class AlertStore {
  constructor(
    private readonly client: Client,
    private readonly keyspace: string,
  ) {}

  /** The stored state of each (rule, device); absent ones are idle. */
  async loadStates(pairs: readonly { ruleId: string; deviceId: string }[]): Promise<Map<string, AlertState>> {
    const out = new Map<string, AlertState>();
    await eachLimited(pairs, Concurrency, async ({ ruleId, deviceId }) => {
      const rs = await this.client.execute(
        `SELECT * FROM ${this.keyspace}.alert_state WHERE rule_id = ? AND device_id = ?`,
        [ruleId, deviceId],
        { prepare: true },
      );
      const row = rs.first();
      out.set(stateKey(ruleId, deviceId), row ? stateOf(row) : idleState());
    });
    return out;
  }

  async saveStates(states: readonly { ruleId: string; deviceId: string; state: AlertState }[]): Promise<void> {
    await eachLimited(states, Concurrency, async ({ ruleId, deviceId, state: s }) => {
      await this.client.execute(
        `INSERT INTO ${this.keyspace}.alert_state (rule_id, device_id, last_window_start, last_source, last_offset, ` +
          'streak, firing, episode, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [
          ruleId,
          deviceId,
          s.lastWindowStart,
          s.lastSource,
          s.lastOffset === null ? null : types.Long.fromString(s.lastOffset.toString()),
          s.streak,
          s.firing,
          s.episode,
          s.model,
        ],
        { prepare: true },
      );
    });
  }

  /** The devices of a rule with an open episode, and their state. */
  async firing(ruleId: string): Promise<{ deviceId: string; state: AlertState }[]> {
    const out: { deviceId: string; state: AlertState }[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(`SELECT * FROM ${this.keyspace}.alert_state WHERE rule_id = ?`, [ruleId], {
        prepare: true,
        fetchSize: 5000,
        ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) {
        const state = stateOf(row);
        if (state.firing) out.push({ deviceId: row.get('device_id') as string, state });
      }
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return out;
  }

  /** Both history tables; a transition written again (same id) overwrites its own rows. */
  async writeTransitions(ts: readonly AlertTransition[]): Promise<void> {
    const columns = 'window_start, id, rule_id, rule_name, resolution, state, episode, value, at, model, reason';
    await eachLimited(ts, Concurrency / 2, async (t) => {
      const day = Math.floor(t.windowStart / DayMs) * DayMs;
      const common = [
        t.windowStart,
        t.id,
        t.ruleId,
        t.ruleName,
        t.resolution,
        t.state,
        t.episode,
        t.value,
        t.at,
        t.model ?? null,
        t.reason,
      ];
      await Promise.all([
        this.client.execute(
          `INSERT INTO ${this.keyspace}.alerts_by_day (day, device_id, ${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [day, t.deviceId, ...common],
          { prepare: true },
        ),
        this.client.execute(
          `INSERT INTO ${this.keyspace}.alerts_by_device (day, device_id, ${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [day, t.deviceId, ...common],
          { prepare: true },
        ),
      ]);
    });
  }
}

function stateOf(row: types.Row): AlertState {
  const offset = row.get('last_offset') as types.Long | null;
  return {
    lastWindowStart: num(row.get('last_window_start')),
    lastSource: (row.get('last_source') as string | null) ?? null,
    lastOffset: offset === null ? null : BigInt(offset.toString()),
    streak: (row.get('streak') as number | null) ?? 0,
    firing: (row.get('firing') as boolean | null) ?? false,
    episode: num(row.get('episode')),
    model: (row.get('model') as string | null) ?? null,
  };
}

/** A history row (either table) as the transition it stores: for readers such as GET /api/alerts. */
export function transitionFromRow(row: types.Row): AlertTransition {
  const model = row.get('model') as string | null;
  return {
    id: row.get('id') as string,
    ruleId: row.get('rule_id') as string,
    ruleName: row.get('rule_name') as string,
    deviceId: row.get('device_id') as string,
    resolution: row.get('resolution') as string,
    state: row.get('state') as AlertTransition['state'],
    episode: num(row.get('episode')) ?? 0,
    windowStart: num(row.get('window_start')) ?? 0,
    value: (row.get('value') as number | null) ?? null,
    at: num(row.get('at')) ?? 0,
    ...(model ? { model } : {}),
    reason: row.get('reason') as AlertTransition['reason'],
  };
}

export const dayOf = (ms: number): number => Math.floor(ms / DayMs) * DayMs;
