#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { isStackError } from './errors';
import { stderrLogger } from './log';
import { clusterStackConfig, loadStackConfig, type StackConfig } from './config';
import { stackDown, stackStatus, stackUp } from './stack';
import { runStart } from './start';

const usage = {
  main: `Usage: npm run stack -- <command> [options]   (or: node compose/dist/cli.js <command>)

Runs the local Apache Kafka (KRaft) and Apache Cassandra from Maven Central jars on this JVM.

Commands:
  up       start Kafka and Cassandra (or reuse running ones), create topics and schema
  down     stop what \`up\` started; --wipe also deletes their data
  status   what runs, pids, ports, and whether it was started here
  start    \`up\`, then every built fleetpulse service; Ctrl-C stops it all

--cluster (any command): a local cluster instead of one node: 3 Kafka brokers (KRaft) and 3 Cassandra nodes, node n
on 127.0.0.n, on the single-node stack's ports plus 100 (9192 Kafka, 9193 controllers, 9142 CQL, 7100 storage by
default); every topic and the keyspace with 3 replicas, min.insync.replicas=2. It runs beside the single-node
stack (other ports, own folders).

Run \`<command> --help\` for its options. Environment variables: see compose/README.md.`,
  up: `Usage: npm run stack -- up [--cluster] [--no-topics] [--no-schema]

Starts Kafka and Cassandra unless they already answer on their ports (then they are reused), waits until each
answers a real request, then creates the contract's topics and applies contracts/cql. Idempotent.`,
  down: `Usage: npm run stack -- down [--cluster [--node <n>]] [--wipe]

Stops the Kafka and Cassandra this launcher started (SIGTERM, then SIGKILL after a grace period). A Kafka or
Cassandra it did not start is left running. --wipe also deletes their data folders. --node n stops only node n of
the cluster (its broker and its Cassandra node; \`up --cluster\` brings it back). Idempotent.`,
  status: `Usage: npm run stack -- status [--cluster] [--json]

Shows for Kafka and Cassandra (each node of the cluster): running / starting / external (answering, not started
here) / stopped, pid, address and ports.`,
  start: `Usage: npm start [-- --cluster]   (or: npm run stack -- start [--cluster])

Brings the stack up (or reuses it), starts every fleetpulse service whose build exists, prints their logs with a
[name] prefix. Ctrl-C or SIGTERM stops the services and the parts of the stack this command started.`,
} as const;

type Command = keyof typeof usage;
const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

/** Runs one CLI invocation; returns the exit code. Exported for tests. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    out(usage.main);
    return cmd === undefined ? 1 : 0;
  }
  if (!(cmd in usage) || cmd === 'main') {
    process.stderr.write(`error: unknown command '${cmd}'\n\n${usage.main}\n`);
    return 1;
  }
  const command = cmd as Command;
  let values: Record<string, boolean | undefined> & { node?: string };
  try {
    values = parseArgs({
      args: rest,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        wipe: { type: 'boolean' },
        json: { type: 'boolean' },
        'no-topics': { type: 'boolean' },
        'no-schema': { type: 'boolean' },
        cluster: { type: 'boolean' },
        node: { type: 'string' },
      },
    }).values as Record<string, boolean | undefined> & { node?: string };
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n\n${usage[command]}\n`);
    return 1;
  }
  if (values.help) {
    out(usage[command]);
    return 0;
  }
  try {
    const config = values.cluster === true ? clusterStackConfig() : loadStackConfig();
    let nodes: number[] | undefined;
    if (values.node !== undefined) {
      const n = Number(values.node);
      if (values.cluster !== true || !Number.isInteger(n) || n < 1 || n > config.nodes) {
        process.stderr.write(`error: --node takes a node of the cluster, 1-${config.nodes}, with --cluster\n`);
        return 1;
      }
      nodes = [n];
    }
    switch (command) {
      case 'up':
        return await up(config, values);
      case 'down':
        await stackDown({ config, wipe: values.wipe === true, ...(nodes ? { nodes } : {}) });
        return 0;
      case 'status':
        return await status(config, values.json === true);
      case 'start':
        return await runStart(stderrLogger, config);
      default:
        return 1;
    }
  } catch (e) {
    if (isStackError(e)) {
      process.stderr.write(`error: ${e.message}\n${e.hint ? `  fix: ${e.hint}\n` : ''}`);
    } else {
      process.stderr.write(`unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    return 1;
  }
}

async function up(config: StackConfig, values: Record<string, boolean | undefined>): Promise<number> {
  const controller = new AbortController();
  // Ctrl-C during a start: stop waiting; stackUp then stops what it started before rejecting.
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await stackUp({
      config,
      signal: controller.signal,
      topics: values['no-topics'] !== true,
      schema: values['no-schema'] !== true,
    });
    out(`Kafka:     ${r.brokers.join(',')} (${r.kafka.state})`);
    out(`Cassandra: ${r.contactPoints.join(',')} (${r.cassandra.state})`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function status(config: StackConfig, json: boolean): Promise<number> {
  const s = await stackStatus({ config });
  if (json) {
    out(JSON.stringify(s, null, 2));
    return 0;
  }
  for (const c of s.nodes) {
    const what = {
      running: `running, started by this launcher (pid ${c.pid})`,
      starting: `starting (pid ${c.pid}), not answering yet`,
      external: 'running, not started by this launcher (reused)',
      stopped: 'stopped',
    }[c.state];
    const name = `${c.name === 'kafka' ? 'Kafka' : 'Cassandra'}${config.nodes > 1 ? ` ${c.node}` : ''}`;
    const id = c.identity ? (c.name === 'kafka' ? `, cluster ${c.identity}` : `, version ${c.identity}`) : '';
    const where = config.nodes > 1 ? `${c.host}:${c.port}` : `port ${c.port}`;
    out(`${name.padEnd(12)} ${what}; ${where} (internal ${c.internalPort})${id}; log ${c.log}`);
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Exit explicitly: a client library's leftover timer must never keep the CLI hanging.
      process.exit(code);
    },
    (e: unknown) => {
      stderrLogger(`unexpected error: ${String(e)}`);
      process.exitCode = 1;
    },
  );
}
