import { createRequire } from 'node:module';
import { nativeCrc32c } from '@fleetpulse/native';

interface KafkajsCrc32C {
  (data: Buffer): number;
  /** Added by patches/kafkajs+2.2.4.patch: the implementation kafkajs' record batches use; none restores its own. */
  use(implementation?: (data: Buffer) => number): void;
}

const kafkajs = createRequire(require.resolve('kafkajs'));
/** kafkajs' CRC32C module, as its record batch encoders call it. */
export const kafkajsCrc32C = kafkajs('./src/protocol/recordBatch/crc32C') as KafkajsCrc32C;

/**
 * Has kafkajs checksum record batches with the addon's CRC32C (the CPU's crc32 instruction) instead of its
 * JavaScript tables, which were 10% of ingestion's CPU at 800,000 events/s. Process-wide, for every producer.
 * Says which one runs: the JavaScript one when the addon did not load.
 */
export function useNativeChecksum(): 'native' | 'javascript' {
  if (nativeCrc32c === undefined) return 'javascript';
  kafkajsCrc32C.use(nativeCrc32c);
  return 'native';
}
