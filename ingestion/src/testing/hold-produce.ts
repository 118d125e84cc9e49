/**
 * Test-only preload (`node -r ingestion/dist/testing/hold-produce.js ingestion/dist/main.js`): every send to Kafka
 * is held for ever and announced on stderr as `held-produce <records> <events>`, so a test can kill the service
 * after it received a message and before Kafka acknowledged it (mqtt-crash.int.test.ts).
 */
import { GroupCommitProducer } from '../producer';

GroupCommitProducer.prototype.send = function heldSend(records, events) {
  process.stderr.write(`held-produce ${records.length} ${events}\n`);
  return new Promise<void>(() => undefined);
};
