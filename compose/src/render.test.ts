import { load } from 'js-yaml';
import { cassandraJvmArgs, renderCassandraYaml, renderLogback } from './cassandra';
import { loadStackConfig } from './config';
import { kafkaDeps, parseJavaMajor, renderPom } from './java';
import { kafkaJvmArgs, newClusterId, parseProperties, renderLog4j2, renderServerProperties } from './kafka';

const config = loadStackConfig({
  FLEETPULSE_STACK_DIR: '/tmp/fp stack',
  FLEETPULSE_KAFKA_PORT: '19092',
  FLEETPULSE_KAFKA_CONTROLLER_PORT: '19093',
  FLEETPULSE_CASSANDRA_PORT: '19042',
  FLEETPULSE_CASSANDRA_STORAGE_PORT: '17000',
  FLEETPULSE_TOPIC_PARTITIONS: '4',
});

describe('server.properties', () => {
  const props = parseProperties(renderServerProperties(config));

  it('is one KRaft node, broker and controller, on the configured loopback ports', () => {
    expect(props.get('process.roles')).toBe('broker,controller');
    expect(props.get('controller.quorum.voters')).toBe(`${props.get('node.id')}@127.0.0.1:19093`);
    expect(props.get('listeners')).toBe('PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(props.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(props.get('controller.listener.names')).toBe('CONTROLLER');
    expect(props.get('log.dirs')).toBe('/tmp/fp stack/kafka/data');
  });

  it('has single-replica internal topics and no topic auto-creation', () => {
    expect(props.get('offsets.topic.replication.factor')).toBe('1');
    expect(props.get('transaction.state.log.replication.factor')).toBe('1');
    expect(props.get('transaction.state.log.min.isr')).toBe('1');
    expect(props.get('min.insync.replicas')).toBe('1');
    expect(props.get('auto.create.topics.enable')).toBe('false');
    expect(props.get('num.partitions')).toBe('4');
  });

  it('comes with a log4j2 config writing to stdout', () => {
    expect(parseProperties(renderLog4j2()).get('appender.out.type')).toBe('Console');
  });

  it('cluster ids have the form Kafka accepts', () => {
    expect(newClusterId()).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(newClusterId()).not.toBe(newClusterId());
    // An id the storage tool would read as an option is drawn again.
    const draws = [Buffer.alloc(16, 0xfb), Buffer.alloc(16, 0x01)];
    expect(newClusterId(() => draws.shift()!)).toBe(Buffer.alloc(16, 0x01).toString('base64url'));
  });

  it('the JVM runs kafka.Kafka with the heap and our marker', () => {
    const args = kafkaJvmArgs(config, ['/a.jar', '/b.jar'], '-Dmarker=1');
    expect(args).toContain(`-Xmx${config.kafka.heap}`);
    expect(args).toContain('-Dmarker=1');
    expect(args.slice(-4)).toEqual(['-cp', '/a.jar:/b.jar', 'kafka.Kafka', '/tmp/fp stack/kafka/server.properties']);
  });
});

describe('cassandra.yaml', () => {
  const yaml = load(renderCassandraYaml(config)) as Record<string, unknown>;

  it('is valid YAML for one loopback node on the configured ports', () => {
    expect(yaml.cluster_name).toBe('fleetpulse-local');
    expect(yaml.listen_address).toBe('127.0.0.1');
    expect(yaml.rpc_address).toBe('127.0.0.1');
    expect(yaml.native_transport_port).toBe(19042);
    expect(yaml.storage_port).toBe(17000);
    expect(yaml.endpoint_snitch).toBe('SimpleSnitch');
    expect(yaml.partitioner).toBe('org.apache.cassandra.dht.Murmur3Partitioner');
    expect(yaml.seed_provider).toEqual([
      { class_name: 'org.apache.cassandra.locator.SimpleSeedProvider', parameters: [{ seeds: '127.0.0.1:17000' }] },
    ]);
  });

  it('keeps every directory inside the stack folder, even with a space in its path', () => {
    expect(yaml.data_file_directories).toEqual(['/tmp/fp stack/cassandra/data']);
    for (const k of ['commitlog_directory', 'saved_caches_directory', 'hints_directory', 'cdc_raw_directory']) {
      expect(yaml[k]).toMatch(/^\/tmp\/fp stack\/cassandra\//);
    }
  });

  it('sizes memtables from the heap', () => {
    expect(yaml.memtable_heap_space).toBe('128MiB');
  });

  it('the JVM runs CassandraDaemon in the foreground with the Java 17 options and jamm', () => {
    const args = cassandraJvmArgs(config, ['/m2/jamm-0.4.0.jar', '/m2/cassandra-all-5.0.9.jar'], '-Dmarker=1');
    expect(args.at(-1)).toBe('org.apache.cassandra.service.CassandraDaemon');
    expect(args).toContain('-Dcassandra-foreground=yes');
    expect(args).toContain('-Dcassandra.config=file:///tmp/fp stack/cassandra/cassandra.yaml');
    expect(args).toContain('-javaagent:/m2/jamm-0.4.0.jar');
    expect(args.join(' ')).toContain('--add-opens java.base/sun.nio.ch=ALL-UNNAMED');
    expect(() => cassandraJvmArgs(config, ['/m2/cassandra-all-5.0.9.jar'], '-Dm')).toThrow(/jamm/);
  });

  it('logback config is XML with a console appender', () => {
    expect(renderLogback()).toMatch(/<appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">/);
  });
});

describe('a local cluster of three nodes (--cluster)', () => {
  const cluster = loadStackConfig({ FLEETPULSE_STACK_DIR: '/tmp/fp', FLEETPULSE_STACK_NODES: '3' });

  it('puts node n of Kafka on 127.0.0.n, every node a voter, three replicas and two in sync', () => {
    const props = parseProperties(renderServerProperties(cluster, 2));
    expect(props.get('node.id')).toBe('2');
    expect(props.get('controller.quorum.voters')).toBe('1@127.0.0.1:9193,2@127.0.0.2:9193,3@127.0.0.3:9193');
    expect(props.get('listeners')).toBe('PLAINTEXT://127.0.0.2:9192,CONTROLLER://127.0.0.2:9193');
    expect(props.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.2:9192');
    expect(props.get('log.dirs')).toBe('/tmp/fp/cluster/kafka-2/data');
    for (const k of [
      'default.replication.factor',
      'offsets.topic.replication.factor',
      'transaction.state.log.replication.factor',
    ])
      expect([k, props.get(k)]).toEqual([k, '3']);
    expect(props.get('min.insync.replicas')).toBe('2');
    expect(props.get('transaction.state.log.min.isr')).toBe('2');
  });

  it('puts node n of Cassandra on 127.0.0.n, joining through node 1 without streaming', () => {
    const yaml = load(renderCassandraYaml(cluster, 3)) as Record<string, unknown>;
    expect(yaml.listen_address).toBe('127.0.0.3');
    expect(yaml.rpc_address).toBe('127.0.0.3');
    expect(yaml.native_transport_port).toBe(9142);
    expect(yaml.storage_port).toBe(7100);
    expect(yaml.auto_bootstrap).toBe(false);
    expect(JSON.stringify(yaml.seed_provider)).toContain('127.0.0.1:7100');
    expect(yaml.data_file_directories).toEqual(['/tmp/fp/cluster/cassandra-3/data']);
    expect(yaml.cluster_name).toBe('fleetpulse-local-3');
  });

  it('the single node keeps its folders, ports and one replica', () => {
    const props = parseProperties(renderServerProperties(config));
    expect(props.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
    expect(props.get('default.replication.factor')).toBe('1');
    const yaml = load(renderCassandraYaml(config)) as Record<string, unknown>;
    expect(yaml.auto_bootstrap).toBeUndefined();
  });
});

describe('the generated pom', () => {
  it('lists Kafka with its log4j2 binding and a slf4j 2 api', () => {
    const pom = renderPom('kafka', kafkaDeps('4.1.2'));
    expect(pom).toContain('<artifactId>kafka_2.13</artifactId><version>4.1.2</version>');
    expect(pom).toContain('<artifactId>log4j-slf4j2-impl</artifactId>');
    expect(pom).toMatch(/<artifactId>slf4j-api<\/artifactId><version>2\./);
  });
});

describe('parseJavaMajor', () => {
  it('reads old and new version strings', () => {
    expect(parseJavaMajor('openjdk version "17.0.15" 2025-04-15')).toBe(17);
    expect(parseJavaMajor('java version "1.8.0_402"')).toBe(8);
    expect(parseJavaMajor('openjdk version "21" 2023-09-19')).toBe(21);
    expect(parseJavaMajor('no java here')).toBeUndefined();
  });
});
