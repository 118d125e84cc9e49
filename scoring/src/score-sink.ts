/**
 * Where a step's scores go: anomaly.scores (keyed by device, acks from every in-sync replica), then the anomalous
 * ones to Cassandra. Resolves only once both are durable, because the consumer commits a step's offsets right after.
 */
import type { AnomalyScore } from '@fleetpulse/contracts';
import type { Producer } from 'kafkajs';
import type { ScoreSink } from './scorer';
import type { AnomalyStore } from './store';
import type { StepTrace } from './tracing';

/** `steps`: the delivery's span and the stage delay (tracing.ts); absent, neither. */
export function scoreSink(
  producer: Pick<Producer, 'send'>,
  topic: string,
  store: AnomalyStore | null,
  steps?: StepTrace,
): ScoreSink {
  return {
    deliver: async (scores: AnomalyScore[]) => {
      const messages = scores.map((s) => ({ key: s.deviceId, value: JSON.stringify(s) }));
      const span = steps?.begin(topic, messages);
      try {
        await producer.send({ topic, acks: -1, messages });
        steps?.published();
        const anomalous = scores.filter((s) => s.anomalous);
        if (store && anomalous.length > 0) await store.writeAll(anomalous);
      } catch (e) {
        steps?.end(span, e);
        throw e;
      }
      steps?.end(span);
    },
  };
}
