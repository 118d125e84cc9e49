/**
 * Which model scores which record (shared/design.md, "Scoring"): every active model scores the final window records
 * at its own resolution, and nothing scores a provisional one (`final: false`). Kept apart from the Scorer so the
 * rule is in one place and the Scorer only runs, delivers and moves offsets.
 */
import type { WindowRecord } from '@fleetpulse/contracts';
import type { ActiveModel } from './models';

/** The records one model scores in a step, in the order they were read. */
export interface Route {
  model: ActiveModel;
  records: WindowRecord[];
}

/** Routes the final records to the models of `snapshot` (one snapshot per step: a swap falls between steps). */
export function routeRecords(snapshot: ReadonlyMap<string, ActiveModel>, finals: readonly WindowRecord[]): Route[] {
  // Grouped by resolution once, not filtered once per model: several models usually share a resolution.
  const byResolution = new Map<string, WindowRecord[]>();
  for (const r of finals) {
    const list = byResolution.get(r.resolution);
    if (list) list.push(r);
    else byResolution.set(r.resolution, [r]);
  }
  const routes: Route[] = [];
  for (const model of snapshot.values()) {
    const records = byResolution.get(model.spec.resolution);
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
