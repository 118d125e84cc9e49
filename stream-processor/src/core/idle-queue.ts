import { D_QPOS, D_QSTAMP } from './device-rows';

/**
 * A partition's devices waiting to go idle, ordered by (lastReceivedAt, stamp): a FIFO for keys that arrive in order
 * (nearly all) and a min-heap for the others. Each device row holds the stamp of its live entry (D_QSTAMP) and its
 * FIFO position (D_QPOS). A superseded FIFO entry is killed in place (stamp -1), so scanning the FIFO touches no device
 * row; a heap entry whose stamp is not its device's D_QSTAMP is stale. Stale entries are bounded by the live ones.
 */
export class IdleQueue {
  private qDev = new Int32Array(1024);
  private qKey = new Float64Array(1024);
  private qStamp = new Float64Array(1024);
  private qHead = 0;
  private qTail = 0;
  private readonly hDev: number[] = [];
  private readonly hKey: number[] = [];
  private readonly hStamp: number[] = [];
  private stamp = 0;
  /** Live entries (devices waiting), to bound the stale ones. */
  private waiting = 0;

  /** Device `di` (its row at `rows[di * ds]`) waits to go idle from `key` (its lastReceivedAt) on. */
  push(rows: Float64Array, ds: number, di: number, key: number): void {
    const stamp = this.stamp++;
    const o = di * ds;
    if (rows[o + D_QSTAMP]! < 0) this.waiting++;
    else if (rows[o + D_QPOS]! >= 0) this.qStamp[rows[o + D_QPOS]!] = -1;
    rows[o + D_QSTAMP] = stamp;
    if (this.qTail === this.qHead || this.qKey[this.qTail - 1]! <= key) {
      if (this.qTail === this.qDev.length) this.room(rows, ds);
      const t = this.qTail++;
      this.qDev[t] = di;
      this.qKey[t] = key;
      this.qStamp[t] = stamp;
      rows[o + D_QPOS] = t;
    } else {
      rows[o + D_QPOS] = -1;
      this.heapPush(rows, ds, di, key, stamp);
    }
  }

  /** Marks the device whose row is at `o` as not waiting; its entry goes stale. */
  remove(rows: Float64Array, o: number): void {
    if (rows[o + D_QSTAMP]! >= 0) {
      if (rows[o + D_QPOS]! >= 0) this.qStamp[rows[o + D_QPOS]!] = -1;
      rows[o + D_QSTAMP] = -1;
      rows[o + D_QPOS] = -1;
      this.waiting--;
    }
  }

  /**
   * The waiting device first in (lastReceivedAt, stamp) order if it is idle at `proc` (its key + `idleMs` <= proc),
   * taken off the queue; else -1.
   */
  takeIdle(rows: Float64Array, ds: number, proc: number, idleMs: number): number {
    // Skip stale entries at both fronts.
    while (this.qHead < this.qTail && this.qStamp[this.qHead]! < 0) this.qHead++;
    while (this.hKey.length > 0 && rows[this.hDev[0]! * ds + D_QSTAMP] !== this.hStamp[0]) this.heapPop();
    const fifo = this.qHead < this.qTail;
    const heap = this.hKey.length > 0;
    let di: number;
    if (fifo && (!heap || before(this.qKey[this.qHead]!, this.qStamp[this.qHead]!, this.hKey[0]!, this.hStamp[0]!))) {
      if (!(this.qKey[this.qHead]! + idleMs <= proc)) return -1;
      di = this.qDev[this.qHead++]!;
    } else if (heap) {
      if (!(this.hKey[0]! + idleMs <= proc)) return -1;
      di = this.hDev[0]!;
      this.heapPop();
    } else return -1;
    this.remove(rows, di * ds);
    return di;
  }

  /** Makes room at the FIFO's end: drops stale entries and consumed space, or grows. */
  private room(rows: Float64Array, ds: number): void {
    const live = this.waiting;
    let n = 0;
    const dev = this.qDev;
    const key = this.qKey;
    const st = this.qStamp;
    const size = live * 2 + 1024 > dev.length ? dev.length * 2 : dev.length;
    const nd = size === dev.length ? dev : new Int32Array(size);
    const nk = size === dev.length ? key : new Float64Array(size);
    const ns = size === dev.length ? st : new Float64Array(size);
    for (let i = this.qHead; i < this.qTail; i++) {
      if (st[i]! < 0) continue;
      const di = dev[i]!;
      rows[di * ds + D_QPOS] = n;
      nd[n] = di;
      nk[n] = key[i]!;
      ns[n] = st[i]!;
      n++;
    }
    this.qDev = nd;
    this.qKey = nk;
    this.qStamp = ns;
    this.qHead = 0;
    this.qTail = n;
  }

  private heapPush(rows: Float64Array, ds: number, di: number, key: number, stamp: number): void {
    const hk = this.hKey;
    const hs = this.hStamp;
    const hd = this.hDev;
    let i = hk.length;
    hk.push(key);
    hs.push(stamp);
    hd.push(di);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (hk[p]! < key || (hk[p] === key && hs[p]! < stamp)) break;
      hk[i] = hk[p]!;
      hs[i] = hs[p]!;
      hd[i] = hd[p]!;
      i = p;
    }
    hk[i] = key;
    hs[i] = stamp;
    hd[i] = di;
    if (hk.length > this.waiting * 2 + 1024) this.heapCompact(rows, ds);
  }

  private heapPop(): void {
    const hk = this.hKey;
    const hs = this.hStamp;
    const hd = this.hDev;
    const key = hk.pop()!;
    const stamp = hs.pop()!;
    const di = hd.pop()!;
    const n = hk.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && (hk[c + 1]! < hk[c]! || (hk[c + 1] === hk[c] && hs[c + 1]! < hs[c]!))) c++;
      if (key < hk[c]! || (key === hk[c] && stamp < hs[c]!)) break;
      hk[i] = hk[c]!;
      hs[i] = hs[c]!;
      hd[i] = hd[c]!;
      i = c;
    }
    hk[i] = key;
    hs[i] = stamp;
    hd[i] = di;
  }

  /** Rebuilds the heap without its stale entries. */
  private heapCompact(rows: Float64Array, ds: number): void {
    const keep: [number, number, number][] = [];
    for (let i = 0; i < this.hKey.length; i++) {
      const di = this.hDev[i]!;
      if (rows[di * ds + D_QSTAMP] === this.hStamp[i]) keep.push([this.hKey[i]!, this.hStamp[i]!, di]);
    }
    keep.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.hKey.length = this.hStamp.length = this.hDev.length = 0;
    for (const [k, st, di] of keep) {
      this.hKey.push(k);
      this.hStamp.push(st);
      this.hDev.push(di);
    }
  }
}

function before(k1: number, s1: number, k2: number, s2: number): boolean {
  return k1 < k2 || (k1 === k2 && s1 < s2);
}
