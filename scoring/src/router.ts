/**
 * Which model scores which record (docs/contract.md, "Scoring"): every active model scores the final window records
 * at its own resolution, and nothing scores a provisional one (`final: false`). Kept apart from the Scorer so the
 * rule is in one place and the Scorer only runs, delivers and moves offsets. A quarantined model (models.ts) is in no
 * snapshot: the Scorer counts the records at its resolution as unscored.
 */
import type { WindowRecord } from '@fleetpulse/contracts';
import type { ActiveModel } from './models';

/** The records one model scores in a step, in the order they were read. */
export interface Route {
  model: ActiveModel;
  records: WindowRecord[];
}

/** The records by resolution: grouped once, not filtered once per model (several models usually share one). */
export function byResolution(finals: readonly WindowRecord[]): Map<string, WindowRecord[]> {
  const out = new Map<string, WindowRecord[]>();
  for (const r of finals) {
    const list = out.get(r.resolution);
    if (list) list.push(r);
    else out.set(r.resolution, [r]);
  }
  return out;
}

/**
 * Routes the final records (or those already grouped by {@link byResolution}) to the models of `snapshot` (one
 * snapshot per step: a swap falls between steps).
 */
export function routeRecords(
  snapshot: ReadonlyMap<string, ActiveModel>,
  finals: readonly WindowRecord[] | ReadonlyMap<string, WindowRecord[]>,
): Route[] {
  const grouped = 'get' in finals ? finals : byResolution(finals);
  const routes: Route[] = [];
  for (const model of snapshot.values()) {
    const records = grouped.get(model.spec.resolution);
    if (records) routes.push({ model, records });
  }
  return routes;
}

/** The records a model may score: final ones. Provisional records (`final: false`) are read and passed over. */
export function finalRecords<T extends { record: WindowRecord }>(records: readonly T[]): WindowRecord[] {
  const out: WindowRecord[] = [];
  for (const r of records) if (r.record.final === true) out.push(r.record);
  return out;
}
