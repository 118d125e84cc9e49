/**
 * Alert rules in Cassandra (`fleetpulse.alert_rules`, contracts/cql/005-alerts.cql): what the dashboard's REST routes
 * create, list and delete, and what the evaluator and the webhook deliverer read. Deleting a rule marks it
 * (`deleted_at`); the evaluator then ends its open episodes and removes it for good ({@link RuleStore.purge}).
 */
import { randomUUID } from 'node:crypto';
import { Keyspace } from '@fleetpulse/contracts';
import type { Client, types } from 'cassandra-driver';
import type { NewRule, Rule } from './rule';

/** The store holds this many rules at most: every evaluator reads them all every few seconds. */
export const DefaultMaxRules = 1000;

/** `create` past the bound (a `409`/`400` for the REST route). */
export class TooManyRules extends Error {
  override readonly name = 'TooManyRules';
}

const toNumber = (v: unknown): number | null =>
  v === null || v === undefined ? null : typeof v === 'number' ? v : Number((v as types.Long).toString());

export class RuleStore {
  private readonly table: string;

  constructor(
    private readonly client: Client,
    private readonly keyspace: string = Keyspace,
    private readonly o: { maxRules?: number; now?: () => number } = {},
  ) {
    this.table = `${keyspace}.alert_rules`;
  }

  /** Stores a rule checked by `parseRule`: the stored rule, with its new id and creation time. */
  async create(rule: NewRule): Promise<Rule> {
    const max = this.o.maxRules ?? DefaultMaxRules;
    if ((await this.all()).length >= max) throw new TooManyRules(`at most ${max} alert rules; delete one first`);
    const stored: Rule = { id: randomUUID(), createdAt: (this.o.now ?? Date.now)(), ...rule };
    await this.client.execute(
      `INSERT INTO ${this.table} (id, name, devices, resolution, condition, webhook, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [stored.id, rule.name, rule.devices, rule.resolution, JSON.stringify(rule.when), rule.webhook, stored.createdAt],
      { prepare: true },
    );
    return stored;
  }

  /** The rules in force, oldest first. */
  async list(): Promise<Rule[]> {
    return (await this.all()).filter((r) => r.deletedAt === null).map((r) => r.rule);
  }

  /** One rule in force; null when absent or deleted. */
  async get(id: string): Promise<Rule | null> {
    const rs = await this.client.execute(`SELECT * FROM ${this.table} WHERE id = ?`, [id], { prepare: true });
    const row = rs.first();
    if (!row) return null;
    const r = fromRow(row);
    return r && r.deletedAt === null ? r.rule : null;
  }

  /** Deletes a rule: false when there was none in force. Its open episodes end ("rule-deleted") within seconds. */
  async delete(id: string): Promise<boolean> {
    if ((await this.get(id)) === null) return false;
    await this.client.execute(
      `UPDATE ${this.table} SET deleted_at = ? WHERE id = ?`,
      [(this.o.now ?? Date.now)(), id],
      {
        prepare: true,
      },
    );
    return true;
  }

  /** Deleted rules whose episodes the evaluator has not ended yet. */
  async deleted(): Promise<Rule[]> {
    return (await this.all()).filter((r) => r.deletedAt !== null).map((r) => r.rule);
  }

  /** Removes a deleted rule for good, with the evaluator's state of it. */
  async purge(id: string): Promise<void> {
    await this.client.execute(`DELETE FROM ${this.keyspace}.alert_state WHERE rule_id = ?`, [id], { prepare: true });
    await this.client.execute(`DELETE FROM ${this.table} WHERE id = ?`, [id], { prepare: true });
  }

  private async all(): Promise<{ rule: Rule; deletedAt: number | null }[]> {
    const out: { rule: Rule; deletedAt: number | null }[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(`SELECT * FROM ${this.table}`, [], {
        prepare: true,
        fetchSize: 1000,
        ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) {
        const r = fromRow(row);
        if (r) out.push(r);
      }
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return out.sort((a, b) => a.rule.createdAt - b.rule.createdAt || a.rule.id.localeCompare(b.rule.id));
  }
}

/** A row as a rule; null for a row that is not one (half written: a concurrent delete's tombstone). */
function fromRow(row: types.Row): { rule: Rule; deletedAt: number | null } | null {
  const condition = row.get('condition') as string | null;
  const name = row.get('name') as string | null;
  if (condition === null || name === null) return null;
  let when: Rule['when'];
  try {
    when = JSON.parse(condition) as Rule['when'];
  } catch {
    return null;
  }
  return {
    rule: {
      id: row.get('id') as string,
      createdAt: toNumber(row.get('created_at')) ?? 0,
      name,
      devices: row.get('devices') as string,
      resolution: row.get('resolution') as string,
      when,
      webhook: row.get('webhook') as string,
    },
    deletedAt: toNumber(row.get('deleted_at')),
  };
}
