/**
 * Reads what onnxruntime-node does not expose: a ModelProto's `metadata_props` (field 14, repeated
 * StringStringEntryProto {key = 1, value = 2}). Walks the top-level protobuf fields only, so a file that is not a
 * well-formed protobuf at the top level (truncated, random bytes) is reported here, before any session is made.
 */

export class OnnxFormatError extends Error {
  override readonly name = 'OnnxFormatError';
}

const MetadataProps = 14;
const Graph = 7;

function varint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new OnnxFormatError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw new OnnxFormatError('varint too long');
}

interface Field {
  field: number;
  /** Payload of a length-delimited field (wire type 2); null for the other wire types. */
  bytes: Uint8Array | null;
}

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = varint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) throw new OnnxFormatError(`field number 0 at byte ${pos}`);
    pos = p1;
    switch (wire) {
      case 0:
        pos = varint(buf, pos)[1];
        yield { field, bytes: null };
        break;
      case 1:
        pos += 8;
        yield { field, bytes: null };
        break;
      case 5:
        pos += 4;
        yield { field, bytes: null };
        break;
      case 2: {
        const [len, p2] = varint(buf, pos);
        if (p2 + len > buf.length) throw new OnnxFormatError(`field ${field} runs past the end of the file`);
        yield { field, bytes: buf.subarray(p2, p2 + len) };
        pos = p2 + len;
        break;
      }
      default:
        throw new OnnxFormatError(`unsupported wire type ${wire} at byte ${pos}`);
    }
    if (pos > buf.length) throw new OnnxFormatError('truncated field');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The model's metadata_props as a plain object (later keys win). Throws {@link OnnxFormatError} when the bytes are
 * not a ModelProto with a graph.
 */
export function readOnnxMetadata(buf: Uint8Array): Record<string, string> {
  if (buf.length === 0) throw new OnnxFormatError('empty file');
  const props: Record<string, string> = {};
  let hasGraph = false;
  for (const f of fields(buf)) {
    if (f.field === Graph && f.bytes) hasGraph = true;
    if (f.field !== MetadataProps || !f.bytes) continue;
    let key = '';
    let value = '';
    for (const e of fields(f.bytes)) {
      if (e.field === 1 && e.bytes) key = utf8.decode(e.bytes);
      else if (e.field === 2 && e.bytes) value = utf8.decode(e.bytes);
    }
    props[key] = value;
  }
  if (!hasGraph) throw new OnnxFormatError('no graph: not an ONNX model');
  return props;
}
