import { randomBytes } from 'node:crypto';
import { Partitioners } from 'kafkajs';
// kafkajs's own hash, the reference.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: Buffer | string) => number;
import { FastDefaultPartitioner, murmur2 } from './partitioner';

describe('murmur2', () => {
  it('equals kafkajs’s for keys of every length, bytes of every value', () => {
    for (let n = 0; n < 3000; n++) {
      const key = randomBytes(n % 67);
      expect(murmur2(key)).toBe(kafkajsMurmur2(key));
    }
    for (const id of ['sensor-12', 'ü-gerät', '', 'a', 'bench-mx3a-9999'])
      expect(murmur2(Buffer.from(id))).toBe(kafkajsMurmur2(id));
  });

  it('sends a keyed message to the partition kafkajs’s default partitioner would', () => {
    const ours = FastDefaultPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: 7 }, (_, i) => ({
      partitionId: i,
      leader: i === 3 ? -1 : 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    for (let d = 0; d < 500; d++) {
      const args = { topic: 't', partitionMetadata, message: { key: `device-${d}`, value: 'x' } };
      expect(ours(args)).toBe(theirs(args));
    }
    const pinned = { topic: 't', partitionMetadata, message: { key: 'k', value: 'x', partition: 5 } };
    expect(ours(pinned)).toBe(5);
  });
});
