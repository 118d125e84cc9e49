/**
 * Reading a file of MODELS_DIR as a hostile one may be laid there: only a regular file that is an entry of the folder
 * itself (not a symbolic link, nor anything that resolves outside it: checked by lstat, realpath and an O_NOFOLLOW
 * open), no larger than the limit, which is checked on the open file before a byte is read. A refusal names the file
 * relative to the folder and never quotes its content; {@link cleanReason} does the same for every reason shown.
 */
import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export class FileRefused extends Error {
  override readonly name = 'FileRefused';
}

/** What a sidecar (`<name>.json`) may weigh; a spec is a few hundred bytes. */
export const MaxSidecarBytes = 1024 * 1024;

const MiB = 1024 * 1024;
const mib = (n: number) => `${(n / MiB).toFixed(n < 10 * MiB ? 1 : 0)} MiB`;

/** The one-line description of a file type lstat reports, for refusals. */
function kindOf(s: { isSymbolicLink(): boolean; isDirectory(): boolean; isFIFO(): boolean }): string {
  if (s.isSymbolicLink()) return 'a symbolic link';
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a named pipe';
  return 'not a regular file';
}

/**
 * The bytes of `file`, an entry of `dir`, at most `maxBytes` of them. Throws {@link FileRefused} (reason relative to
 * the folder, no content) for a symbolic link, anything that is not a regular file, a file outside the folder or one
 * over the limit; other errors (ENOENT: gone meanwhile) as they come.
 */
export async function readModelFile(dir: string, file: string, maxBytes: number): Promise<Uint8Array> {
  const name = basename(file);
  if (resolve(dirname(file)) !== resolve(dir)) throw new FileRefused(`${name}: not an entry of the models folder`);
  const path = join(dir, name);
  const l = await lstat(path);
  if (!l.isFile()) throw new FileRefused(`${name} is ${kindOf(l)}; only regular files in the folder are loaded`);
  if (l.size > maxBytes) throw tooLarge(name, l.size, maxBytes);
  const [realDir, real] = await Promise.all([realpath(dir), realpath(path)]);
  if (real !== join(realDir, name)) throw new FileRefused(`${name} resolves outside the models folder`);
  // O_NOFOLLOW: an entry swapped for a link since the lstat fails here (ELOOP); O_NONBLOCK: nor does a pipe hang.
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new FileRefused(`${name} is a symbolic link`);
    throw e;
  }
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw new FileRefused(`${name} is not a regular file`);
    if (s.size > maxBytes) throw tooLarge(name, s.size, maxBytes);
    const bytes = new Uint8Array(s.size);
    let at = 0;
    // In chunks: one read of 2 GiB or more aborts Node itself (its length must be an int32).
    while (at < bytes.length) {
      const { bytesRead } = await fh.read(bytes, at, Math.min(bytes.length - at, 16 * MiB), at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    if (at !== bytes.length) throw new FileRefused(`${name} shrank while it was read (${at} of ${s.size} bytes)`);
    return bytes;
  } finally {
    await fh.close();
  }
}

function tooLarge(name: string, size: number, max: number): FileRefused {
  return new FileRefused(
    `${name} is ${mib(size)}, over the ${mib(max)} limit (FLEETPULSE_SCORING_MAX_MODEL_MB); refused unread`,
  );
}

/** Longest reason kept: enough for onnxruntime's message, not for a file's worth of text. */
const MaxReasonChars = 400;

/**
 * A reason as shown in /api/models and logs: the folder's absolute path written as `MODELS_DIR`, control characters
 * (a name inside a model could carry line breaks into the log) as spaces, at most {@link MaxReasonChars} characters.
 */
export function cleanReason(reason: string, dir: string): string {
  let r = reason.split(resolve(dir)).join('MODELS_DIR');
  // eslint-disable-next-line no-control-regex
  r = r.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
  return r.length > MaxReasonChars ? `${r.slice(0, MaxReasonChars)}...` : r;
}

/**
 * Why a sidecar is not JSON, without quoting it: V8's message carries the text near the error ("Unexpected token
 * 'x', "...secret..." is not valid JSON"); only the position is kept.
 */
export function jsonErrorWithoutContent(e: unknown): string {
  const m = /position (\d+)/.exec(e instanceof Error ? e.message : '');
  return m ? `invalid JSON at position ${m[1]}` : 'invalid JSON';
}
