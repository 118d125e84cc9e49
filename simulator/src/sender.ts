/**
 * Sends a fleet's batches with honest backpressure: each lane sends its batches one after another (so a device's
 * events reach ingestion in the order the device sent them), a 503/429 is waited out as Retry-After says and the
 * same batch (same seq values) goes again, network errors and other 5xx are retried with backoff, and every event
 * ends up counted exactly once as accepted, rejected or failed.
 */
import { encodeBatch, ContentTypes, type BodyFormat } from './encode';
import { SimulatorError } from './errors';
import type { EventBatch, SimEvent } from './fleet-types';
import { LatencyHistogram } from './histogram';
import type { Transport, TransportResponse } from './transport';
import { backoffDelay } from '@fleetpulse/runtime';

export interface SenderOptions {
  transport: Transport;
  /** [json] */
  format?: BodyFormat;
  /** Requests in flight: one per lane; batch.lane is taken modulo this. [4] */
  concurrency?: number;
  /** Wait for the wall clock to reach each batch's `sendAt` before sending it. [false] */
  realtime?: boolean;
  /** Resends of one batch after 503/429/5xx/network errors before its events count as failed. [20] */
  maxRetries?: number;
  /** First backoff after a failure without Retry-After (ms); doubles per attempt, with jitter. [100] */
  backoffBaseMs?: number;
  /** Longest backoff (ms). [10000] */
  backoffMaxMs?: number;
  /** A Retry-After above this is cut to it (ms). [60000] */
  maxRetryAfterMs?: number;
  /** Batches queued per lane ahead of the one in flight; a full lane holds the generator back. [2] */
  queuePerLane?: number;
  /** Wall clock, epoch ms (tests inject their own). [Date.now] */
  now?: () => number;
}

export interface SendStats {
  /** Batches handed to the sender (retry resends the fleet made included). */
  batches: number;
  /** Events in those batches: at the end, accepted + rejected + failed === events. */
  events: number;
  accepted: number;
  rejected: number;
  /** Events that were never answered for: given up after retries, refused as a whole (4xx), or aborted. */
  failed: number;
  /** Events handed over and not settled yet. */
  inFlight: number;
  /** HTTP requests made, resends included. */
  requests: number;
  /** Requests that repeated a batch after an error or a 503. */
  resends: number;
  /** Failed requests and failed events by kind: http503, http500, ECONNREFUSED, timeout, gave-up, aborted... */
  errors: Record<string, number>;
  /** The first message seen for each error kind. */
  errorSamples: Record<string, string>;
  /** Events rejected by ingestion, by its error message (the first 50 distinct messages, then `other`). */
  rejections: Record<string, number>;
  /** Set when the run stopped because no request could succeed (401, 415). */
  fatal?: string;
  latency: LatencyHistogram;
  /** Latency since the progress reporter last reset it. */
  recentLatency: LatencyHistogram;
}

interface Lane {
  queue: EventBatch[];
  closed: boolean;
  /** Wakes the worker (a batch arrived or the lane closed). */
  wakeWorker: (() => void) | null;
  /** Wakes the dispatcher (room in the queue). */
  wakeDispatcher: (() => void) | null;
}

interface ReceiptBody {
  accepted?: unknown;
  rejected?: unknown;
  errors?: unknown;
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export class Sender {
  readonly stats: SendStats = {
    batches: 0,
    events: 0,
    accepted: 0,
    rejected: 0,
    failed: 0,
    inFlight: 0,
    requests: 0,
    resends: 0,
    errors: {},
    errorSamples: {},
    rejections: {},
    latency: new LatencyHistogram(),
    recentLatency: new LatencyHistogram(),
  };
  private readonly o: Required<SenderOptions>;
  private readonly contentType: string;
  private stopping = false;
  private aborting = false;
  private hurrying = false;
  /** Waits cut short by stop(): the dispatcher's. Waits cut short by abort(): all. */
  private readonly dispatchWaits = new Set<() => void>();
  private readonly retryWaits = new Set<() => void>();

  constructor(options: SenderOptions) {
    this.o = {
      format: 'json',
      concurrency: 4,
      realtime: false,
      maxRetries: 20,
      backoffBaseMs: 100,
      backoffMaxMs: 10_000,
      maxRetryAfterMs: 60_000,
      queuePerLane: 2,
      now: Date.now,
      ...options,
    };
    this.contentType = ContentTypes[this.o.format];
  }

  /** Stop pacing: the batches still to come are sent as fast as possible (used to drain a stopping fleet). */
  hurry(): void {
    this.hurrying = true;
    wakeAll(this.dispatchWaits);
  }

  /** Stop taking new batches; what was handed over is still delivered (with its retries). */
  stop(): void {
    this.stopping = true;
    wakeAll(this.dispatchWaits);
  }

  /** Stop now: queued batches and those waiting for a retry count as failed (`aborted`). */
  abort(): void {
    this.stopping = true;
    this.aborting = true;
    wakeAll(this.dispatchWaits);
    wakeAll(this.retryWaits);
  }

  /** Sends every batch (until stopped) and resolves when each handed-over event is settled. */
  async run(batches: Iterable<EventBatch>): Promise<SendStats> {
    const lanes: Lane[] = Array.from({ length: this.o.concurrency }, () => ({
      queue: [],
      closed: false,
      wakeWorker: null,
      wakeDispatcher: null,
    }));
    const workers = lanes.map((lane) => this.work(lane));
    try {
      for (const batch of batches) {
        if (this.stopping) break;
        if (this.o.realtime && !this.hurrying) {
          const wait = batch.sendAt - this.o.now();
          if (wait > 0) await this.sleep(wait, this.dispatchWaits);
          if (this.stopping) break;
        }
        const lane = lanes[batch.lane % lanes.length]!;
        while (lane.queue.length >= this.o.queuePerLane && !this.stopping) {
          await new Promise<void>((resolve) => {
            lane.wakeDispatcher = resolve;
            this.dispatchWaits.add(resolve);
          });
          this.dispatchWaits.delete(lane.wakeDispatcher!);
          lane.wakeDispatcher = null;
        }
        if (this.stopping) break;
        this.stats.batches++;
        this.stats.events += batch.events.length;
        this.stats.inFlight += batch.events.length;
        lane.queue.push(batch);
        lane.wakeWorker?.();
      }
    } finally {
      for (const lane of lanes) {
        lane.closed = true;
        lane.wakeWorker?.();
      }
      await Promise.all(workers);
    }
    return this.stats;
  }

  /** Waits `ms`, or less if woken through `waits`. */
  private sleep(ms: number, waits: Set<() => void>): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        waits.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waits.add(done);
    });
  }

  private async work(lane: Lane): Promise<void> {
    for (;;) {
      const batch = lane.queue.shift();
      if (batch === undefined) {
        if (lane.closed) return;
        await new Promise<void>((resolve) => (lane.wakeWorker = resolve));
        lane.wakeWorker = null;
        continue;
      }
      lane.wakeDispatcher?.();
      if (this.aborting) this.settleFailed(batch.events.length, 'aborted', 'aborted before it was sent');
      else await this.deliver(batch.events);
    }
  }

  private countError(kind: string, message: string): void {
    this.stats.errors[kind] = (this.stats.errors[kind] ?? 0) + 1;
    this.stats.errorSamples[kind] ??= message;
  }

  private settleFailed(n: number, kind: string, message: string): void {
    this.countError(kind, message);
    this.stats.failed += n;
    this.stats.inFlight -= n;
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, { initialMs: this.o.backoffBaseMs, maxMs: this.o.backoffMaxMs });
  }

  /** Sends one batch until it is answered for; splits it in two on 413. */
  private async deliver(events: SimEvent[]): Promise<void> {
    const n = events.length;
    const body = encodeBatch(events, this.o.format);
    for (let attempt = 0; ; attempt++) {
      if (this.aborting) return this.settleFailed(n, 'aborted', 'aborted while retrying');
      if (attempt > 0) this.stats.resends++;
      this.stats.requests++;
      const t0 = performance.now();
      let res: TransportResponse;
      let waitMs: number;
      try {
        res = await this.o.transport.send(body, this.contentType);
      } catch (err) {
        const e = err instanceof SimulatorError ? err : undefined;
        this.countError(e?.kind ?? 'network', err instanceof Error ? err.message : String(err));
        if (e !== undefined && !e.retriable) return this.settleFailed(n, 'not-retriable', e.message);
        if (attempt >= this.o.maxRetries)
          return this.settleFailed(n, 'gave-up', `no answer after ${attempt + 1} attempts`);
        await this.sleep(this.backoff(attempt), this.retryWaits);
        continue;
      }
      const ms = performance.now() - t0;
      this.stats.latency.record(ms);
      this.stats.recentLatency.record(ms);
      const status = res.status;
      if (status >= 200 && status < 300) return this.settleReceipt(n, res.body);
      const kind = `http${status}`;
      const message = `${status} ${res.body.slice(0, 200)}`;
      if (status === 503 || status === 429 || status >= 500) {
        this.countError(kind, message);
        if (attempt >= this.o.maxRetries)
          return this.settleFailed(n, 'gave-up', `still ${status} after ${attempt + 1} attempts`);
        const retryAfter = parseRetryAfter(res.retryAfter, this.o.now());
        waitMs = retryAfter === undefined ? this.backoff(attempt) : Math.min(retryAfter, this.o.maxRetryAfterMs);
        await this.sleep(waitMs, this.retryWaits);
        continue;
      }
      if (status === 413 && n > 1) {
        // Too large for this server's limits: send the halves, in order.
        this.countError(kind, message);
        const half = Math.ceil(n / 2);
        await this.deliver(events.slice(0, half));
        await this.deliver(events.slice(half));
        return;
      }
      if (status === 401 || status === 403 || status === 415) {
        // No later request can do better: stop the run and say why.
        this.stats.fatal ??=
          status === 415
            ? `ingestion refused the content type ${this.contentType} (415)`
            : `ingestion refused the token (${status}): check --token or FLEETPULSE_TOKEN`;
        this.settleFailed(n, kind, message);
        this.abort();
        return;
      }
      return this.settleFailed(n, kind, message);
    }
  }

  /** A 2xx answer: {"accepted","rejected","errors"}; events it does not account for are failed, not assumed. */
  private settleReceipt(n: number, text: string): void {
    const st = this.stats;
    let receipt: ReceiptBody | undefined;
    try {
      receipt = JSON.parse(text) as ReceiptBody;
    } catch {
      receipt = undefined;
    }
    const accepted = typeof receipt?.accepted === 'number' ? Math.min(Math.max(0, receipt.accepted), n) : 0;
    const rejected = typeof receipt?.rejected === 'number' ? Math.min(Math.max(0, receipt.rejected), n - accepted) : 0;
    st.accepted += accepted;
    st.rejected += rejected;
    st.inFlight -= accepted + rejected;
    if (Array.isArray(receipt?.errors)) {
      for (const e of receipt.errors as unknown[]) {
        const msg = (e as { error?: unknown } | null)?.error;
        let key = typeof msg === 'string' ? msg : 'unknown';
        if (!(key in st.rejections) && Object.keys(st.rejections).length >= 50) key = 'other';
        st.rejections[key] = (st.rejections[key] ?? 0) + 1;
      }
    }
    const missing = n - accepted - rejected;
    if (missing > 0)
      this.settleFailed(
        missing,
        'receipt-mismatch',
        `a ${n}-event batch was answered with ${text.slice(0, 200) || '(empty body)'}`,
      );
  }
}

function wakeAll(waits: Set<() => void>): void {
  for (const wake of [...waits]) wake();
  waits.clear();
}

/** Sends every batch and resolves with the counts; see `Sender` for stop/abort. */
export function sendBatches(batches: Iterable<EventBatch>, options: SenderOptions): Promise<SendStats> {
  return new Sender(options).run(batches);
}
