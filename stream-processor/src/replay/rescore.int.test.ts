/**
 * `replay --rescore` after a model swap, against the real Kafka and Cassandra and the real scoring service (its own
 * process, with the really exported isolation forest and its v2 fixture): the range's scores then name the new
 * version, window for window.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnomalyScore, TelemetryEvent } from '@fleetpulse/contracts';
import { kafkaClient, uniqueName } from '@fleetpulse/compose/testing';
import type { Consumer } from 'kafkajs';
import { newTopic, runReplay, waitFor } from '../testing/harness';

const repo = join(__dirname, '..', '..', '..');
const kafka = kafkaClient();

describe('replay --rescore after a model swap', () => {
  const prefix = uniqueName('rescore');
  const dir = mkdtempSync(join(tmpdir(), 'rescore-models-'));
  let scoring: ChildProcess | undefined;
  const scoringOutput: string[] = [];
  let reader: Consumer | undefined;
  afterAll(async () => {
    if (scoring && scoring.exitCode === null && scoring.signalCode === null) {
      const exited = new Promise((r) => scoring!.once('exit', r));
      scoring.kill('SIGTERM');
      await exited;
    }
    await reader?.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives every window of the range a score of the new model version', async () => {
    // Three days ago, on a minute boundary; every device reports its four metrics each second for 90 s.
    const startTs = Math.floor((Date.now() - 3 * 86_400_000) / 60_000) * 60_000;
    const topics = {
      raw: await newTopic(kafka, 3),
      aggregates: await newTopic(kafka, 3),
      scores: await newTopic(kafka, 3),
    };
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const messages = [];
    for (let i = 0; i < 90; i++)
      for (let d = 0; d < 6; d++) {
        const ts = startTs + i * 1000 + d * 7;
        const event: TelemetryEvent = {
          deviceId: `${prefix}-${d}`,
          ts,
          // Device 5 runs hot and shakes in its second half: something for the models to disagree about.
          metrics: {
            temp: 21 + ((i * 3 + d) % 7) / 10 + (d === 5 && i > 45 ? 25 : 0),
            humidity: 45 + ((i + d) % 5),
            vib: 0.2 + ((i * 5 + d) % 11) / 100 + (d === 5 && i > 45 ? 3 : 0),
            volt: 229 + ((i + 2 * d) % 3),
          },
          seq: i,
          receivedAt: ts + 50,
        };
        messages.push({ key: event.deviceId, value: JSON.stringify(event), timestamp: String(event.receivedAt) });
      }
    await producer.send({ topic: topics.raw, acks: -1, messages });
    await producer.disconnect();

    copyFileSync(join(repo, 'scoring', 'models', 'iforest.onnx'), join(dir, 'iforest.onnx'));
    scoring = spawn(process.execPath, [join(repo, 'scoring', 'dist', 'main.js')], {
      env: {
        ...process.env,
        MODELS_DIR: dir,
        FLEETPULSE_SCORING_GROUP: uniqueName('rescore-scoring'),
        FLEETPULSE_SCORING_SOURCE_TOPIC: topics.aggregates,
        FLEETPULSE_SCORING_SCORES_TOPIC: topics.scores,
        FLEETPULSE_SCORING_HOST: '127.0.0.1',
        FLEETPULSE_SCORING_PORT: '0',
        FLEETPULSE_SCORING_MAX_WAIT_MS: '1000',
        FLEETPULSE_SCORING_TICK_MS: '100',
        FLEETPULSE_SCORING_RESCAN_MS: '500',
        FLEETPULSE_SCORING_SESSION_TIMEOUT_MS: '10000',
        FLEETPULSE_SCORING_STORE: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    scoring.stdout!.on('data', (d: Buffer) => scoringOutput.push(d.toString()));
    scoring.stderr!.on('data', (d: Buffer) => scoringOutput.push(d.toString()));
    let port = 0;
    await waitFor(
      'the scoring service to listen',
      async () => {
        port = Number(/http on :(\d+)/.exec(scoringOutput.join(''))?.[1] ?? 0);
        return port > 0;
      },
      60_000,
      200,
    );
    const activeVersion = async (): Promise<string | undefined> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/models`);
        const models = (await res.json()) as { name: string; active: { version: string } | null }[];
        return models.find((m) => m.name === 'iforest')?.active?.version;
      } catch {
        return undefined;
      }
    };
    await waitFor('the scoring service to serve iforest v1', async () => (await activeVersion()) === '1', 60_000);

    const scores: AnomalyScore[] = [];
    reader = kafka.consumer({ groupId: uniqueName('rescore-reader') });
    await reader.connect();
    await reader.subscribe({ topic: topics.scores, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => void scores.push(JSON.parse(message.value!.toString()) as AnomalyScore),
    });
    // 6 devices x the 10 s windows the watermark (last reading - 2 s lateness) closed: [0 s, 80 s) of each; the
    // last one is still open at the range's end and so is neither written nor published.
    const expectedWindows = 6 * 8;
    const quiet = () => new Promise((r) => setTimeout(r, 2000)); // for any score beyond the expected
    const rescore = () =>
      runReplay(['--topic', topics.raw, '--from', '0', '--rescore', '--rescore-topic', topics.aggregates]);
    const key = (s: AnomalyScore) => `${s.deviceId}|${s.windowStart}`;

    // First pass: the range scored by v1.
    const first = await rescore();
    expect({ code: first.code, output: first.output }).toMatchObject({ code: 0 });
    expect(first.output).toMatch(new RegExp(`window records published to ${topics.aggregates.replace(/\./g, '\\.')}`));
    await waitFor('a v1 score for every window', async () => scores.length >= expectedWindows, 60_000);
    await quiet();
    const v1 = scores.filter((s) => s.modelVersion === '1');
    expect(v1).toHaveLength(scores.length);
    const windows = new Set(v1.map(key));
    expect(windows.size).toBe(expectedWindows);
    expect(v1.length).toBe(windows.size);

    // The swap: v2 written beside the folder's model, then renamed over it.
    const incoming = join(dir, '.incoming.tmp');
    writeFileSync(incoming, readFileSync(join(repo, 'scoring', 'fixtures', 'iforest-v2.onnx')));
    renameSync(incoming, join(dir, 'iforest.onnx'));
    await waitFor('the scoring service to serve iforest v2', async () => (await activeVersion()) === '2', 60_000);

    const before = scores.length;
    const second = await rescore();
    expect({ code: second.code, output: second.output }).toMatchObject({ code: 0 });
    await waitFor('a v2 score for every window', async () => scores.length - before >= expectedWindows, 60_000);
    await quiet();
    const rescored = scores.slice(before);
    expect(rescored.every((s) => s.modelVersion === '2')).toBe(true);
    expect(new Set(rescored.map(key))).toEqual(windows);
    expect(rescored).toHaveLength(windows.size);
  }, 300_000);
});
