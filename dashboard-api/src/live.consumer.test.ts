import { Logger } from '@nestjs/common';
import { Topics, type WindowRecord } from '@fleetpulse/contracts';
import type { KafkaContext } from '@nestjs/microservices';
import { checkTransition, checkWindowRecord, LiveConsumer } from './live.consumer';
import type { LiveGateway } from './live.gateway';
import { DashboardMetrics } from './metrics.service';
import { aggregateRow, anomalyScore, windowRecord } from './testing';

// The Kafka handlers without Kafka: what reaches the gateway, what is refused with which reason, and that nothing a
// producer sends makes a handler throw (a throw would make kafkajs retry the batch forever).
function setup(
  publish: (r: WindowRecord) => void = () => undefined,
  watched: (deviceId: string) => boolean = () => true,
) {
  const published: WindowRecord[] = [];
  const gateway = {
    wants: (deviceId: string) => watched(deviceId),
    publishAggregate: (r: WindowRecord) => {
      published.push(r);
      publish(r);
    },
    publishAnomaly: () => undefined,
  } as unknown as LiveGateway;
  const metrics = new DashboardMetrics();
  const consumer = new LiveConsumer(gateway, metrics);
  const count = async (outcome: string, topic: string = Topics.aggregates) =>
    (await metrics.kafkaRecords.get()).values.find((v) => v.labels.topic === topic && v.labels.outcome === outcome)
      ?.value ?? 0;
  return { consumer, published, count };
}

let warn: jest.SpyInstance;
let error: jest.SpyInstance;
beforeEach(() => {
  warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
});
afterEach(() => jest.restoreAllMocks());

describe('checkWindowRecord', () => {
  const good = windowRecord('d', 0, { temp: 1, vib: 2 }, '10s');

  it('accepts a window record as it is', () => {
    expect(checkWindowRecord(good)).toBe(good);
    expect(checkWindowRecord({ ...good, final: false })).toEqual({ ...good, final: false });
  });

  it.each([
    ['a string', 'not JSON', 'not a JSON object'],
    ['null', null, 'not a JSON object'],
    ['an array', [good], 'not a JSON object'],
    [
      'a v1 row',
      aggregateRow('d', 'temp', 0, 1),
      'a v1 aggregate row (one metric); metrics.aggregates carries v2 window records',
    ],
    ['no device', { ...good, deviceId: 7 }, 'deviceId: expected a string'],
    ['no resolution', { ...good, resolution: undefined }, 'resolution: expected a string'],
    ['a string start', { ...good, windowStart: '0' }, 'windowStart: expected a number'],
    ['no end', { ...good, windowEnd: null }, 'windowEnd: expected a number'],
    ['no final', { ...good, final: undefined }, 'final: expected true or false'],
    ['no metrics', { ...good, metrics: undefined }, 'metrics: expected an object'],
    ['empty metrics', { ...good, metrics: {} }, 'metrics: empty'],
    ['a number metric', { ...good, metrics: { temp: 1 } }, 'metrics.temp: expected an object'],
    [
      'a missing stat',
      { ...good, metrics: { ...good.metrics, vib: { ...good.metrics.vib, last: undefined } } },
      'metrics.vib.last: expected a number',
    ],
  ])('refuses %s with the reason', (_, value, reason) => {
    expect(checkWindowRecord(value)).toBe(reason);
  });
});

/** A record as the transport hands it over (kafkaTransport keeps values binary): its key and a context holding it. */
function fromKafka(value: unknown, key: string | null) {
  const bytes = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  return [bytes, { getMessage: () => ({ key, value: bytes, headers: {} }) } as unknown as KafkaContext] as const;
}

describe('LiveConsumer', () => {
  it('parses only the records of devices someone watches; the others are counted as unwatched', async () => {
    const { consumer, published, count } = setup(undefined, (d) => d === 'watched');
    const mine = windowRecord('watched', 0, { temp: 1 });
    consumer.onAggregate(...fromKafka(mine, 'watched'));
    consumer.onAggregate(...fromKafka(windowRecord('other', 0, { temp: 1 }), 'other'));
    consumer.onLive(...fromKafka({ ...windowRecord('other', 0, { temp: 2 }), final: false }, 'other'));
    // Not JSON at all: never parsed, since nobody watches its device (the count says so) ...
    consumer.onAggregate(...fromKafka('{not json', 'other'));
    expect(published).toEqual([mine]);
    expect(await count('ok')).toBe(1);
    expect(await count('unwatched')).toBe(2);
    expect(await count('unwatched', Topics.live)).toBe(1);
    expect(await count('invalid')).toBe(0);
    // ... but refused with the reason when someone does, or when the record has no key to tell.
    consumer.onAggregate(...fromKafka('{not json', 'watched'));
    consumer.onAggregate(...fromKafka('{not json', null));
    expect(await count('invalid')).toBe(2);
    expect(warn.mock.calls[0]?.[0]).toMatch(/skipping an invalid record on metrics\.aggregates \(1 so far\): not JSON/);
  });

  it('hands valid records to the gateway and counts them', async () => {
    const { consumer, published, count } = setup();
    const r = windowRecord('d', 0, { temp: 1 });
    consumer.onAggregate(r);
    expect(published).toEqual([r]);
    expect(await count('ok')).toBe(1);
    expect(await count('invalid')).toBe(0);
  });

  it('counts and logs an invalid record, never throws, and goes on with the next one', async () => {
    const { consumer, published, count } = setup();
    for (const bad of ['{', 42, null, aggregateRow('d', 'temp', 0, 1), { deviceId: 'd' }])
      expect(() => consumer.onAggregate(bad)).not.toThrow();
    consumer.onAggregate(windowRecord('d', 1000, { temp: 2 }));
    expect(published.map((r) => r.windowStart)).toEqual([1000]);
    expect(await count('invalid')).toBe(5);
    expect(await count('ok')).toBe(1);
    expect(warn).toHaveBeenCalledTimes(5);
    expect(warn.mock.calls[3]![0]).toContain(
      'skipping an invalid record on metrics.aggregates (4 so far): a v1 aggregate row (one metric)',
    );
  });

  it('logs the first 10 invalid records, then every 1000th; the counter has them all', async () => {
    const { consumer, count } = setup();
    for (let i = 0; i < 2000; i++) consumer.onAggregate({});
    expect(await count('invalid')).toBe(2000);
    expect(warn).toHaveBeenCalledTimes(12);
  });

  it('survives a gateway that throws', async () => {
    const { consumer, count } = setup(() => {
      throw new Error('boom');
    });
    expect(() => consumer.onAggregate(windowRecord('d', 0, { temp: 1 }))).not.toThrow();
    expect(error).toHaveBeenCalledWith('publishing a window record: Error: boom');
    expect(await count('ok')).toBe(1);
  });

  it('counts an invalid score apart and drops scores that are not anomalous', async () => {
    const { consumer, count } = setup();
    consumer.onScore({ deviceId: 'd' });
    consumer.onScore({ ...anomalyScore('d', 0), anomalous: false });
    expect(await count('invalid', Topics.scores)).toBe(1);
    expect(await count('ok', Topics.scores)).toBe(1);
  });

  it('hands provisional records of metrics.live to the gateway; a final one, or an invalid one, is counted there', async () => {
    const { consumer, published, count } = setup();
    const p = { ...windowRecord('d', 0, { temp: 1 }), final: false };
    consumer.onLive(p);
    for (const bad of [windowRecord('d', 0, { temp: 2 }), { ...p, metrics: {} }, 'x'])
      expect(() => consumer.onLive(bad)).not.toThrow();
    expect(published).toEqual([p]);
    expect(await count('ok', Topics.live)).toBe(1);
    expect(await count('invalid', Topics.live)).toBe(3);
    expect(warn.mock.calls[0]![0]).toContain(
      'skipping an invalid record on metrics.live (1 so far): final: expected false (metrics.live carries provisional records)',
    );
  });
});

describe('checkTransition (alerts)', () => {
  const t = {
    id: 'a1',
    ruleId: 'r1',
    ruleName: 'overheat',
    deviceId: 'd1',
    resolution: '10s',
    state: 'firing',
    episode: 1000,
    windowStart: 1000,
    value: 81.5,
    at: 1200,
    reason: 'condition',
  };

  it('accepts a transition, refuses what a client could not show, with the reason', () => {
    expect(checkTransition(t)).toBe(t);
    expect(checkTransition({ ...t, value: null, model: 'iforest' })).toEqual({ ...t, value: null, model: 'iforest' });
    expect(checkTransition('x')).toBe('not a JSON object');
    expect(checkTransition({ ...t, id: '' })).toBe('id: expected a string');
    expect(checkTransition({ ...t, state: 'open' })).toBe('state: expected "firing" or "resolved"');
    expect(checkTransition({ ...t, windowStart: '1' })).toBe('windowStart: expected a number');
    expect(checkTransition({ ...t, value: 'hot' })).toBe('value: expected a number or null');
  });
});
