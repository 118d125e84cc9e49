/**
 * Where a step's scores go: anomaly.scores (keyed by device, acks from every in-sync replica), then the anomalous
 * ones to Cassandra. Resolves only once both are durable, because the consumer commits a step's offsets right after.
 */
import type { AnomalyScore } from '@fleetpulse/contracts';
import type { Producer } from 'kafkajs';
import type { ScoreSink } from './scorer';
import type { AnomalyStore } from './store';

export function scoreSink(producer: Producer, topic: string, store: AnomalyStore | null): ScoreSink {
  return {
    deliver: async (scores: AnomalyScore[]) => {
      await producer.send({
        topic,
        acks: -1,
        messages: scores.map((s) => ({ key: s.deviceId, value: JSON.stringify(s) })),
      });
      const anomalous = scores.filter((s) => s.anomalous);
      if (store && anomalous.length > 0) await store.writeAll(anomalous);
    },
  };
}
