import {
  cassandraContactPoint,
  cassandraContactPoints,
  heapMb,
  initialHeap,
  kafkaBrokers,
  loadStackConfig,
} from './config';
import { StackError } from './errors';

describe('loadStackConfig', () => {
  it('has the contract defaults', () => {
    const c = loadStackConfig({ HOME: '/home/x' });
    expect(c.kafka.port).toBe(9092);
    expect(c.kafka.internalPort).toBe(9093);
    expect(c.cassandra.port).toBe(9042);
    expect(c.cassandra.internalPort).toBe(7000);
    expect(c.topicPartitions).toBe(6);
    expect(c.kafka.heap).toBe('512m');
    expect(c.cassandra.heap).toBe('1g');
    expect(c.cassandra.timeoutMs).toBe(180_000);
    expect(c.stackDir).toMatch(/\.fleetpulse$/);
    expect(c.m2Dir).toMatch(/\.cache\/fleetpulse\/m2$/);
    expect(kafkaBrokers(c)).toEqual(['127.0.0.1:9092']);
    expect(cassandraContactPoint(c)).toBe('127.0.0.1:9042');
  });

  it('as a cluster (FLEETPULSE_STACK_NODES=3): a node per loopback address, ports 100 up, three replicas', () => {
    const c = loadStackConfig({ HOME: '/home/x', FLEETPULSE_STACK_NODES: '3' });
    expect([c.nodes, c.replicationFactor, c.minInsyncReplicas]).toEqual([3, 3, 2]);
    expect(kafkaBrokers(c)).toEqual(['127.0.0.1:9192', '127.0.0.2:9192', '127.0.0.3:9192']);
    expect(cassandraContactPoints(c)).toEqual(['127.0.0.1:9142', '127.0.0.2:9142', '127.0.0.3:9142']);
    expect([c.kafka.internalPort, c.cassandra.internalPort]).toEqual([9193, 7100]);
    // The single stack's ports, set or default, plus 100: the two never collide on 127.0.0.1.
    expect(loadStackConfig({ FLEETPULSE_STACK_NODES: '3', FLEETPULSE_KAFKA_PORT: '29092' }).kafka.port).toBe(29192);
    expect(() => loadStackConfig({ FLEETPULSE_STACK_NODES: '5' })).toThrow(/FLEETPULSE_STACK_NODES: at most 3/);
  });

  it('takes every override from the environment', () => {
    const c = loadStackConfig({
      FLEETPULSE_KAFKA_PORT: '19092',
      FLEETPULSE_CASSANDRA_PORT: '19042',
      FLEETPULSE_KAFKA_HEAP: '384m',
      FLEETPULSE_CASSANDRA_HEAP: '2g',
      FLEETPULSE_TOPIC_PARTITIONS: '3',
      FLEETPULSE_STACK_DIR: '/tmp/stack-x',
      FLEETPULSE_M2: '/tmp/m2-x',
      FLEETPULSE_CASSANDRA_TIMEOUT_MS: '5000',
    });
    expect(kafkaBrokers(c)).toEqual(['127.0.0.1:19092']);
    expect(cassandraContactPoint(c)).toBe('127.0.0.1:19042');
    expect(c.kafka.heap).toBe('384m');
    expect(c.cassandra.heap).toBe('2g');
    expect(c.topicPartitions).toBe(3);
    expect(c.stackDir).toBe('/tmp/stack-x');
    expect(c.m2Dir).toBe('/tmp/m2-x');
    expect(c.cassandra.timeoutMs).toBe(5000);
  });

  it('finds java through JAVA_HOME unless FLEETPULSE_JAVA says otherwise', () => {
    expect(loadStackConfig({ JAVA_HOME: '/opt/jdk' }).java).toBe('/opt/jdk/bin/java');
    expect(loadStackConfig({ JAVA_HOME: '/opt/jdk', FLEETPULSE_JAVA: '/x/java' }).java).toBe('/x/java');
    expect(loadStackConfig({}).java).toBe('java');
  });

  it('names every bad variable in one error', () => {
    let error: unknown;
    try {
      loadStackConfig({
        FLEETPULSE_KAFKA_PORT: 'abc',
        FLEETPULSE_CASSANDRA_HEAP: 'lots',
        FLEETPULSE_TOPIC_PARTITIONS: '0',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StackError);
    const msg = (error as StackError).message;
    expect(msg).toContain('FLEETPULSE_KAFKA_PORT');
    expect(msg).toContain('FLEETPULSE_CASSANDRA_HEAP');
    expect(msg).toContain('FLEETPULSE_TOPIC_PARTITIONS');
  });

  it('rejects ports out of range, tiny heaps and two components on one port', () => {
    expect(() => loadStackConfig({ FLEETPULSE_CASSANDRA_PORT: '70000' })).toThrow(/FLEETPULSE_CASSANDRA_PORT/);
    expect(() => loadStackConfig({ FLEETPULSE_KAFKA_HEAP: '64m' })).toThrow(/at least 128m/);
    expect(() => loadStackConfig({ FLEETPULSE_CASSANDRA_PORT: '9092' })).toThrow(
      /ports must differ.*FLEETPULSE_KAFKA_PORT=9092.*FLEETPULSE_CASSANDRA_PORT=9092/,
    );
  });

  it('treats an empty variable as unset', () => {
    expect(loadStackConfig({ FLEETPULSE_KAFKA_PORT: '' }).kafka.port).toBe(9092);
  });
});

describe('heap sizes', () => {
  it('parse m and g, and start small', () => {
    expect(heapMb('512m')).toBe(512);
    expect(heapMb('2G')).toBe(2048);
    expect(initialHeap('1g')).toBe('256m');
    expect(initialHeap('200m')).toBe('200m');
  });
});
