/*
 * A million devices, most of them quiet, through one stream-processor process (bounded state, contract v2).
 *
 * A topic is pre-filled directly (kafkajs): `devices` distinct devices each reporting once (one event per record,
 * `quietPerSec` new devices per second of event time), then the first `active` of them reporting every second for
 * `activeSeconds` of event time (`eventsPerRecord` per record); the active devices reported once at the very start,
 * so by the time they report again they may have left memory and are then read back from processor_device_state.
 * All of it lies in the past, so the wall clock closes the last windows once the processor has caught up. Each
 * active part starts at a minute boundary after the previous one, so the input implies no late event (a device
 * idle-closed and resuming inside the same 60 s window would be late for it); `inputLate` checks that.
 *
 * Measured: the time to consume everything (spawn, and first event read, to committed offsets at the end), the
 * longest gap without committed progress and without events read (a stall shows as one), peak RSS (goal <= 1 GB),
 * and from /metrics at the end: resident devices, devices evicted, device lookups found / not found, device states
 * checkpointed. Then twice, a backlog of the active devices (`restartSeconds` of event time, received now) is
 * produced; once half of it is read the processor is stopped, first with SIGTERM (graceful: final flush, commit),
 * then with SIGKILL (a crash), and a new process started on the same group: the time from its spawn to reading
 * events again and to committed at the end (restart from the checkpoints; after a SIGKILL the dead member holds its
 * partitions until its session times out, FLEETPULSE_PROCESSOR_SESSION_TIMEOUT_MS, 30 s by default). Late events
 * are counted after each restart: the data has none, so any would be a wrong resume.
 */
import type { TelemetryEvent } from '@fleetpulse/contracts';
import { loadStackConfig } from '@fleetpulse/compose';
import { sleep } from '@fleetpulse/runtime';
import type { Admin } from 'kafkajs';
import {
  atEnd,
  connectStack,
  committedOffsets,
  committedSum,
  endOffsets,
  forgetGroup,
  lateInRecords,
  memoryMb,
  metricBy,
  metricSum,
  produce,
  startProcessor,
  type Sample,
  type ServiceProcess,
} from './services';

export interface BenchMillionOptions {
  /** [devices=1000000] - distinct devices, each reporting once. */
  devices?: number;
  /** [quietPerSec=5000] - devices reporting for the first time per second of event time. */
  quietPerSec?: number;
  /** [active=10000] - devices then reporting every second. */
  active?: number;
  /** [activeSeconds=60] */
  activeSeconds?: number;
  /** [restartSeconds=20] - event time of each backlog read across a restart. */
  restartSeconds?: number;
  /** [eventsPerRecord=4] - of the active devices (seconds between their records: under the 5 s idle timeout). */
  eventsPerRecord?: number;
  /** [timeoutMs=3600000] - longest wait for any catch-up. */
  timeoutMs?: number;
}

export interface ProcessorState {
  residentDevices: number;
  evicted: number;
  lookups: Record<string, number>;
  checkpointDevices: number;
  rowsWritten: number;
  windowsPublished: number;
  late: number;
}

export interface MillionRestart {
  signal: 'SIGTERM' | 'SIGKILL';
  backlogEvents: number;
  /** Events of the backlog the stopped process had read when it got the signal. */
  readBeforeSignal: number;
  /** From the signal to the process's exit. */
  exitSeconds: number;
  /** From the new process's spawn to its first event read. */
  toConsumingSeconds: number;
  /** From its spawn to committed offsets at the end. */
  toCaughtUpSeconds: number;
  peakRssMb: number;
  /** The new process's counters once caught up. */
  state: ProcessorState;
}

export interface BenchMillionResult {
  devices: number;
  active: number;
  events: number;
  records: number;
  consume: {
    /** Spawn to committed at the end. */
    seconds: number;
    /** First event read to committed at the end. */
    processingSeconds: number;
    eventsPerSec: number;
    longestCommitGapSeconds: number;
    longestReadGapSeconds: number;
    peakRssMb: number;
    state: ProcessorState;
  };
  restarts: MillionRestart[];
  /** Late events the topic's records imply by themselves (see lateInRecords): 0 by construction. */
  inputLate: number;
}

export async function benchMillion(opts: BenchMillionOptions = {}): Promise<BenchMillionResult> {
  const o = {
    devices: 1_000_000,
    quietPerSec: 5000,
    active: 10_000,
    activeSeconds: 60,
    restartSeconds: 20,
    eventsPerRecord: 4,
    timeoutMs: 60 * 60_000,
    ...opts,
  };
  const { kafka, admin, client, close } = await connectStack('bench-million');
  const partitions = loadStackConfig().topicPartitions;
  const stamp = Date.now().toString(36);
  const topic = `bench.million.${stamp}`;
  const group = `bench-million-${stamp}`;
  const prefix = `mi${stamp}-`;
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
  });
  const procs: ServiceProcess[] = [];
  try {
    const quietSeconds = o.devices / o.quietPerSec;
    // Each active part starts at a minute boundary after the previous one: a device that paused (idle-closed) and
    // resumed within the same 60 s window would be late for it (docs/contract.md, "Windows", idle devices).
    const nextMinute = (t: number) => Math.ceil((t + 1) / 60_000) * 60_000;
    const t0 = nextMinute(Date.now()) - 3 * 60_000 - (quietSeconds + o.activeSeconds) * 1000;
    const activeStart = nextMinute(t0 + quietSeconds * 1000);
    const metrics = (d: number, s: number) => ({
      temp: 20 + (d % 10) / 3 + (s % 5) / 10,
      humidity: 40 + (s % 7),
      vib: 0.1 + (d % 5) / 50,
      volt: 230 + (s % 3),
    });
    // The active devices' readings of `seconds` seconds of event time from `start`, received `receivedAt(ts)`.
    const activeRecords = function* (start: number, seconds: number, receivedAt: (ts: number) => number) {
      for (let s = 0; s < seconds; s += o.eventsPerRecord)
        for (let d = 0; d < o.active; d++) {
          const events: TelemetryEvent[] = [];
          for (let k = 0; k < o.eventsPerRecord && s + k < seconds; k++) {
            const ts = start + (s + k) * 1000 + (d % 1000);
            events.push({
              deviceId: `${prefix}${d}`,
              ts,
              metrics: metrics(d, s + k),
              seq: 1 + Math.round((start - t0) / 1000) + s + k,
              receivedAt: receivedAt(ts),
            });
          }
          yield { partition: d % partitions, key: `${prefix}${d}`, value: JSON.stringify(events) };
        }
    };
    const quietRecords = function* () {
      for (let d = 0; d < o.devices; d++) {
        const ts = t0 + Math.floor((d * 1000) / o.quietPerSec);
        const e: TelemetryEvent = {
          deviceId: `${prefix}${d}`,
          ts,
          metrics: metrics(d, 0),
          seq: 0,
          receivedAt: ts + 40,
        };
        yield { partition: d % partitions, key: `${prefix}${d}`, value: JSON.stringify([e]) };
      }
    };
    process.stderr.write(
      `filling ${topic}: ${o.devices} devices once, then ${o.active} of them for ${o.activeSeconds} s...`,
    );
    const quiet = await produce(kafka, topic, quietRecords());
    const active = await produce(
      kafka,
      topic,
      activeRecords(activeStart, o.activeSeconds, (ts) => ts + 40),
    );
    const events = o.devices + o.active * o.activeSeconds;
    process.stderr.write(` ${quiet + active} records\n`);

    // 1. Everything, from the start.
    const p1 = await startProcessor('processor-1', topic, group);
    procs.push(p1);
    const consume = await untilCaughtUp(admin, p1, group, topic, o.timeoutMs, events);
    const state1 = stateOf(await p1.metrics());
    const result: BenchMillionResult = {
      devices: o.devices,
      active: o.active,
      events,
      records: quiet + active,
      consume: {
        seconds: consume.toCaughtUpSeconds,
        processingSeconds: consume.toCaughtUpSeconds - consume.toConsumingSeconds,
        eventsPerSec: events / (consume.toCaughtUpSeconds - consume.toConsumingSeconds),
        longestCommitGapSeconds: consume.longestCommitGap,
        longestReadGapSeconds: consume.longestReadGap,
        peakRssMb: memoryMb(p1.pid).hwm,
        state: state1,
      },
      restarts: [],
      inputLate: 0,
    };
    process.stderr.write(
      `  consumed in ${consume.toCaughtUpSeconds.toFixed(1)} s; peak RSS ${result.consume.peakRssMb.toFixed(0)} MB; ${JSON.stringify(state1)}\n`,
    );

    // 2. A backlog, and a stop half way through it: graceful, then a crash.
    let current = p1;
    let start = nextMinute(activeStart + o.activeSeconds * 1000);
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const backlogEvents = o.active * o.restartSeconds;
      const before = metricSum(await current.metrics(), 'fleetpulse_processor_events_total');
      process.stderr.write(`backlog of ${backlogEvents} events, then ${signal} half way...\n`);
      // Produced in the background, received now (as ingestion stamps it, just before the record is appended): the
      // running processor reads it as it arrives.
      const producing = produce(
        kafka,
        topic,
        activeRecords(start, o.restartSeconds, () => Date.now()),
      );
      let read = 0;
      for (;;) {
        read = metricSum(await current.metrics(), 'fleetpulse_processor_events_total') - before;
        if (read >= backlogEvents / 2 || !current.running()) break;
        await sleep(50);
      }
      const signalled = performance.now();
      await current.stop(signal, 60_000);
      const exitSeconds = (performance.now() - signalled) / 1000;
      await producing;
      const next = await startProcessor(`processor-${procs.length + 1}`, topic, group);
      procs.push(next);
      const r = await untilCaughtUp(admin, next, group, topic, o.timeoutMs);
      const restart: MillionRestart = {
        signal,
        backlogEvents,
        readBeforeSignal: read,
        exitSeconds,
        toConsumingSeconds: r.toConsumingSeconds,
        toCaughtUpSeconds: r.toCaughtUpSeconds,
        peakRssMb: memoryMb(next.pid).hwm,
        state: stateOf(await next.metrics()),
      };
      result.restarts.push(restart);
      process.stderr.write(
        `  ${signal}: exit ${exitSeconds.toFixed(1)} s; new process reading after ${r.toConsumingSeconds.toFixed(1)} s, caught up after ${r.toCaughtUpSeconds.toFixed(1)} s; late ${restart.state.late}\n`,
      );
      current = next;
      start = nextMinute(start + o.restartSeconds * 1000);
    }
    await current.stop('SIGTERM', 30_000);
    process.stderr.write('reading the topic back for the late events its records imply...\n');
    result.inputLate = (await lateInRecords(kafka, topic)).late;
    return result;
  } finally {
    for (const p of procs) await p.stop('SIGTERM', 30_000);
    await forgetGroup(admin, client, group, topic);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await close();
  }
}

function stateOf(m: Sample[]): ProcessorState {
  return {
    residentDevices: metricSum(m, 'fleetpulse_processor_resident_devices'),
    evicted: metricSum(m, 'fleetpulse_processor_devices_evicted_total'),
    lookups: metricBy(m, 'fleetpulse_processor_device_lookups_total', 'found'),
    checkpointDevices: metricSum(m, 'fleetpulse_processor_checkpoint_devices_total'),
    rowsWritten: metricSum(m, 'fleetpulse_processor_rows_written_total'),
    windowsPublished: metricSum(m, 'fleetpulse_processor_windows_published_total'),
    late: metricSum(m, 'fleetpulse_processor_late_events_total'),
  };
}

/**
 * Polls every 250 ms until the group's committed offsets reach the topic's end: times from the spawn to the first
 * event read and to the end; with `events` (how many there are to read, and progress lines), the longest stretches
 * without committed progress and without events read, from the first event read on (reading stops counting once
 * all are read: what follows is the wall clock closing the last windows).
 */
async function untilCaughtUp(
  admin: Admin,
  proc: ServiceProcess,
  group: string,
  topic: string,
  timeoutMs: number,
  events?: number,
): Promise<{
  toConsumingSeconds: number;
  toCaughtUpSeconds: number;
  longestCommitGap: number;
  longestReadGap: number;
}> {
  const ends = await endOffsets(admin, topic);
  const total = [...ends.values()].reduce((a, b) => a + b, 0);
  let firstRead: number | undefined;
  let lastCommitted = -1;
  let lastCommitAt = performance.now();
  let lastEvents = -1;
  let lastReadAt = performance.now();
  let longestCommitGap = 0;
  let longestReadGap = 0;
  let lastLog = performance.now();
  for (;;) {
    if (!proc.running()) throw new Error(`${proc.name} exited (log: ${proc.logFile})`);
    const now = performance.now();
    if (now - proc.spawnedAt > timeoutMs)
      throw new Error(`${proc.name} did not catch up within ${timeoutMs / 60_000} min`);
    const committed = await committedOffsets(admin, group, topic);
    const sum = committedSum(committed);
    const read = await proc.metrics().then(
      (m) => metricSum(m, 'fleetpulse_processor_events_total'),
      () => lastEvents,
    );
    if (read > 0 && firstRead === undefined) {
      firstRead = now;
      lastReadAt = lastCommitAt = now;
      lastCommitted = sum;
      lastEvents = read;
    }
    if (firstRead !== undefined) {
      if (sum !== lastCommitted) {
        longestCommitGap = Math.max(longestCommitGap, (now - lastCommitAt) / 1000);
        lastCommitted = sum;
        lastCommitAt = now;
      }
      if (read !== lastEvents || (events !== undefined && read >= events)) {
        longestReadGap = Math.max(longestReadGap, (now - lastReadAt) / 1000);
        lastEvents = read;
        lastReadAt = now;
      }
    }
    if (atEnd(committed, ends)) {
      longestCommitGap = Math.max(longestCommitGap, (now - lastCommitAt) / 1000);
      return {
        toConsumingSeconds: ((firstRead ?? now) - proc.spawnedAt) / 1000,
        toCaughtUpSeconds: (now - proc.spawnedAt) / 1000,
        longestCommitGap,
        longestReadGap,
      };
    }
    if (events !== undefined && now - lastLog >= 10_000) {
      lastLog = now;
      process.stderr.write(
        `  [${proc.name} ${((now - proc.spawnedAt) / 1000).toFixed(0)}s] ${read}/${events} events read, ${sum}/${total} records committed, RSS ${memoryMb(proc.pid).rss.toFixed(0)} MB\n`,
      );
    }
    await sleep(250);
  }
}
