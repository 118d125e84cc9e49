/** Messages between the service and its session host child (session-host.ts / session-host-child.ts). */

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

export type Request =
  | { id: number; op: 'load'; key: string; bytes: Uint8Array }
  | { id: number; op: 'run'; key: string; input: Float32Array; rows: number; cols: number; output: string }
  | { id: number; op: 'release'; key: string }
  | { id: number; op: 'stats' };

export type Response =
  | { id: number; ok: true; info?: SessionInfo; scores?: Float32Array; dims?: number[]; rss?: number }
  | { id: number; ok: false; error: string };
