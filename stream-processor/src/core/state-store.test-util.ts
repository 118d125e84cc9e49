import type { TelemetryEvent } from '@fleetpulse/contracts';
import type { WindowAggregator } from './aggregator';
import type { PartitionCheckpoint, StoredDeviceState } from './types';

/**
 * What the processor's CheckpointStore keeps, in memory, for tests of the core: headers per partition and device
 * states per epoch, written and read back exactly as the processor does (through JSON, devices before the header).
 */
export class MemoryStateStore {
  readonly headers = new Map<number, PartitionCheckpoint>();
  readonly states = new Map<string, StoredDeviceState>();
  lookups = 0;

  /**
   * Takes a checkpoint of the partition and stores it; `header: false` stores only its devices, as a crash between
   * the two writes leaves it. Then tells the aggregator it is stored (quiet devices may leave memory).
   */
  checkpoint(agg: WindowAggregator, p: number, opts: { header?: boolean } = {}): PartitionCheckpoint {
    const cp = JSON.parse(JSON.stringify(agg.checkpoint(p))) as PartitionCheckpoint;
    for (const d of cp.devices)
      this.states.set(`${cp.epoch}|${p}|${String(d[0])}`, { state: d.slice(0, -1), through: Number(d[d.length - 1]) });
    if (opts.header !== false) {
      this.headers.set(p, { ...cp, devices: [] });
      agg.persisted(p, cp.seq!);
    }
    return cp;
  }

  /** Ingests a record as the processor does: devices absent from memory are read back first. */
  ingest(agg: WindowAggregator, p: number, offset: string, value: TelemetryEvent | readonly TelemetryEvent[]): void {
    if (agg.needsLookup(p)) {
      const events = Array.isArray(value) ? (value as readonly TelemetryEvent[]) : [value as TelemetryEvent];
      const id = events[0]!.deviceId;
      if (!agg.isResident(p, id)) {
        this.lookups++;
        const found = this.states.get(`${agg.epochOf(p)}|${p}|${id}`);
        if (found) agg.restoreDevices(p, [found]);
      }
    }
    agg.ingest(p, offset, value);
  }
}
