/**
 * Messages between the service and its session host child (session-host.ts / session-host-child.ts). A `run` carries
 * every row one model scores in a step, cut by the child into onnxruntime runs of at most `runRows` rows: one
 * round trip per message instead of one per run, which is what the process boundary costs (the profile: the child
 * waited for the next request for about an eighth of the time; serialising a Float32Array is a copy and cheap).
 */

export interface ValueMeta {
  name: string;
  isTensor: boolean;
  /** onnxruntime's type name (`float32`, `int64`, ...) of a tensor. */
  type?: string;
  /** Dimensions; strings are symbolic (the batch). */
  shape?: (number | string)[];
}

export interface SessionInfo {
  inputs: ValueMeta[];
  outputs: ValueMeta[];
  /** Session creation time in the child, ms. */
  createMs: number;
}

export interface HostOptions {
  /** onnxruntime intra-op threads per session. */
  intraOpThreads: number;
}

/** Rows `[row, row + rows)` of a run message that got no scores, and why (their scores are NaN). */
export interface RunFailure {
  row: number;
  rows: number;
  error: string;
}

export type Request =
  | { id: number; op: 'load'; key: string; bytes: Uint8Array }
  | {
      id: number;
      op: 'run';
      key: string;
      /** `rows` x `cols` float32 features, row-major. */
      input: Float32Array;
      rows: number;
      cols: number;
      output: string;
      /** Rows per onnxruntime run. */
      runRows: number;
    }
  | { id: number; op: 'release'; key: string }
  | { id: number; op: 'stats' };

export type Response =
  | {
      id: number;
      ok: true;
      info?: SessionInfo;
      /** One score per row of a run message; NaN where a run failed (listed in `failed`). */
      scores?: Float32Array;
      failed?: RunFailure[];
      rss?: number;
    }
  | {
      id: number;
      ok: false;
      error: string;
      /** Set by the service's side, never by the child: the child died while running this message. */
      crashedRunning?: boolean;
    };
