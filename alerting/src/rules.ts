/**
 * The rules in force as this process sees them: read from Cassandra on start and every FLEETPULSE_ALERTING_RULES_REFRESH_MS,
 * compiled once per read. A rule not (yet) in the last read is asked of Cassandra directly by `get`, so a rule made a
 * moment ago is found by the deliverer before the next read.
 */
import { compileRule, type CompiledRule, type Rule } from './rule';
import type { RuleStore } from './rule-store';

export class Rules {
  private compiled: CompiledRule[] = [];
  private byId = new Map<string, Rule>();

  constructor(
    private readonly store: RuleStore,
    private readonly log: (line: string) => void,
  ) {}

  /** Reads the rules again; a stored rule that does not compile is left out and logged. */
  async refresh(): Promise<void> {
    const rules = await this.store.list();
    const compiled: CompiledRule[] = [];
    for (const r of rules) {
      try {
        compiled.push(compileRule(r));
      } catch (e) {
        this.log(`rule ${r.id} left out: ${(e as Error).message}`);
      }
    }
    this.compiled = compiled;
    this.byId = new Map(rules.map((r) => [r.id, r]));
  }

  get all(): readonly CompiledRule[] {
    return this.compiled;
  }

  count(kind: CompiledRule['kind']): number {
    return this.compiled.filter((c) => c.kind === kind).length;
  }

  /** A rule in force by id: from the last read, else from Cassandra; null when absent or deleted. */
  async get(id: string): Promise<Rule | null> {
    return this.byId.get(id) ?? (await this.store.get(id));
  }
}
