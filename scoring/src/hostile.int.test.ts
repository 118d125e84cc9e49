/**
 * Issue 13, scoring: hostile model files and models, and deliveries that fail, against the real service (real Kafka
 * and Cassandra, models exported by the Python toolchain): a symlinked and a 2 GiB model file refused without being
 * read, a model that kills the session host on real windows quarantined while the others score on, and a failed score
 * delivery followed by a restart with every window scored exactly once.
 */
import { copyFileSync, renameSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueName } from '@fleetpulse/compose/testing';
import { ConfigResourceTypes } from 'kafkajs';
import type { ModelStatus } from './models';
import { simulateAggregates } from './testing';
import {
  admin,
  committedToEnd,
  completeWindows,
  countBy,
  fixtures,
  harness,
  metricsText,
  models,
  positions,
  publish,
  sample,
  sleep,
  until,
} from './testing/service-harness';

// A failed delivery waits out the producer's retries, twice (before and after the restart).
jest.setTimeout(240_000);

const MiB = 1024 * 1024;

const withDefaultModel = (dir: string) => {
  copyFileSync(join(models, 'iforest.onnx'), join(dir, 'iforest.onnx'));
  copyFileSync(join(models, 'iforest.json'), join(dir, 'iforest.json'));
};

async function apiModels(port: number): Promise<{ text: string; models: ModelStatus[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/models`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, models: JSON.parse(text) as ModelStatus[] };
}

test('a symlinked and a 2 GiB model file are refused unread, with reasons that carry no path; memory stays flat', async () => {
  const prefix = `${uniqueName('hf')}-`;
  const sim = simulateAggregates({ devices: 5, durationMs: 2 * 60_000, seed: 7, devicePrefix: prefix });
  const expected = completeWindows(sim.records);
  const h = await harness(withDefaultModel);
  try {
    const rss = async () => ({ service: process.memoryUsage().rss, host: await h.service.host.childRss() });
    const before = await rss();
    // A link to a real model outside the folder, and a sparse 2 GiB file (no block of it written).
    symlinkSync(join(models, 'iforest.onnx'), join(h.dir, 'linked.onnx'));
    writeFileSync(join(h.dir, '.big.tmp'), 'not a model: a secret');
    truncateSync(join(h.dir, '.big.tmp'), 2 * 1024 * MiB);
    renameSync(join(h.dir, '.big.tmp'), join(h.dir, 'big.onnx'));
    const status = async (name: string) => (await apiModels(h.service.port)).models.find((m) => m.name === name);
    let linked: ModelStatus | undefined;
    let big: ModelStatus | undefined;
    for (const end = Date.now() + 10_000; Date.now() < end && !(linked?.lastError && big?.lastError); await sleep(100))
      [linked, big] = [await status('linked'), await status('big')];
    const after = await rss();
    expect(linked).toMatchObject({
      file: 'linked.onnx',
      active: null,
      lastError: {
        file: 'linked.onnx',
        reason: 'linked.onnx is a symbolic link; only regular files in the folder are loaded',
      },
    });
    expect(big).toMatchObject({
      file: 'big.onnx',
      active: null,
      lastError: {
        file: 'big.onnx',
        reason: 'big.onnx is 2048 MiB, over the 256 MiB limit (FLEETPULSE_SCORING_MAX_MODEL_MB); refused unread',
      },
    });
    // Nothing in the answer or the log names an absolute path or quotes a file.
    const { text } = await apiModels(h.service.port);
    for (const out of [text, ...h.logs.filter((l) => /linked|big/.test(l))]) {
      expect(out).not.toContain(h.dir);
      expect(out).not.toContain(models);
      expect(out).not.toContain('secret');
    }
    const grown = { service: (after.service - before.service) / MiB, host: (after.host - before.host) / MiB };
    console.log(
      `2 GiB sparse model + symlink refused: service RSS ${(before.service / MiB).toFixed(0)} -> ` +
        `${(after.service / MiB).toFixed(0)} MiB (${grown.service.toFixed(1)}), session host ` +
        `${(before.host / MiB).toFixed(0)} -> ${(after.host / MiB).toFixed(0)} MiB (${grown.host.toFixed(1)})`,
    );
    expect(grown.service).toBeLessThan(64);
    expect(grown.host).toBeLessThan(64);
    // The default model kept serving.
    await publish(h.source, sim.records);
    await until(() => h.scores.length >= expected.size, 30_000, `${expected.size} scores`);
    expect((await status('iforest'))?.active?.version).toBe('1');
  } finally {
    await h.close();
  }
});

test('a model that kills the session host on real windows is quarantined after 3 crashes; the others score every window', async () => {
  const prefix = `${uniqueName('qc')}-`;
  const sim = simulateAggregates({ devices: 10, durationMs: 5 * 60_000, seed: 11, devicePrefix: prefix });
  const expected = completeWindows(sim.records);
  const finals10s = sim.records.filter((r) => r.final && r.resolution === '10s').length;
  const h = await harness((dir) => {
    withDefaultModel(dir);
    copyFileSync(join(fixtures, 'crash-on-real.onnx'), join(dir, 'crash.onnx'));
    copyFileSync(join(fixtures, 'crash-on-real.json'), join(dir, 'crash.json'));
  });
  try {
    // Loaded: its warm-up (every feature 1) runs; any real window kills the process running it.
    expect(h.service.models().map((m) => [m.name, m.active?.version])).toEqual([
      ['crash', 'crash-1'],
      ['iforest', '1'],
    ]);
    const pid = h.service.host.pid;
    await publish(h.source, sim.records);
    await until(() => h.scores.length >= expected.size, 90_000, `${expected.size} scores`);
    const pos = await committedToEnd(h);
    expect(pos.committed).toEqual(pos.ends);
    await sleep(1000);
    const counts = countBy(h.scores);
    expect([...counts.keys()].filter((k) => !k.endsWith('|iforest'))).toEqual([]);
    expect([...expected].filter((k) => counts.get(`${k}|iforest`) !== 1)).toEqual([]);
    expect(counts.size).toBe(expected.size);

    const crash = (await apiModels(h.service.port)).models.find((m) => m.name === 'crash')!;
    expect(crash.active).toBeNull();
    expect(crash.quarantined).toMatchObject({ file: 'crash.onnx', version: 'crash-1', crashes: 3 });
    expect(crash.quarantined!.reason).toMatch(
      /^the session host died 3 times within 600 s while running this model \(last: session host died running it \(signal SIGFPE\)\); not served until a new file for crash is dropped$/,
    );
    expect(h.service.host.pid).not.toBe(pid);
    const text = await metricsText(h.service.port);
    expect(sample(text, 'scoring_session_host_crashes_total', 'model="crash"')).toBe(3);
    expect(sample(text, 'scoring_windows_unscored_total', 'model="crash",reason="quarantined"')).toBe(
      finals10s - (sample(text, 'scoring_windows_unscorable_total', 'model="crash",reason="missing-metric"') || 0),
    );
    expect(/^scoring_models_quarantined (\S+)$/m.exec(text)?.[1]).toBe('1');
    const ready = await fetch(`http://127.0.0.1:${h.service.port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      kafka: 'up',
      cassandra: 'up',
      models: 1,
      quarantined: 1,
    });

    // A new file for the name lifts it: iforest v2 (metadata only) as crash.onnx now scores too.
    unlinkSync(join(h.dir, 'crash.json'));
    copyFileSync(join(fixtures, 'iforest-v2.onnx'), join(h.dir, '.crash.tmp'));
    renameSync(join(h.dir, '.crash.tmp'), join(h.dir, 'crash.onnx'));
    await until(() => h.service.models().find((m) => m.name === 'crash')?.active?.version === '2', 10_000, 'v2');
    expect(h.service.models().find((m) => m.name === 'crash')!.quarantined).toBeNull();
    const before = h.scores.length;
    const ws = Math.max(...sim.records.map((r) => r.windowStart)) + 60_000;
    const more = sim.records
      .filter((r) => r.windowStart === sim.records[0]!.windowStart)
      .map((r) => ({ ...r, windowStart: ws, windowEnd: ws + 10_000 }));
    await publish(h.source, more);
    const n = completeWindows(more).size;
    await until(() => h.scores.length >= before + 2 * n, 20_000, 'scores by both models');
    expect(new Set(h.scores.slice(before).map((s) => s.model))).toEqual(new Set(['iforest', 'crash']));
  } finally {
    await h.close();
  }
});

test('a failed score delivery followed by a restart: nothing committed past it, every window scored exactly once', async () => {
  const prefix = `${uniqueName('fd')}-`;
  const sim = simulateAggregates({ devices: 12, durationMs: 6 * 60_000, seed: 23, devicePrefix: prefix });
  // Three parts in event time: A delivered, B while deliveries fail, C after they work again.
  const starts = [...new Set(sim.records.map((r) => r.windowStart))].sort((a, b) => a - b);
  const cut = (from: number, to: number) =>
    sim.records.filter((r) => r.windowStart >= starts[from]! && r.windowStart < (starts[to] ?? Infinity));
  const third = Math.floor(starts.length / 3);
  const [a, b, c] = [cut(0, third), cut(third, 2 * third), cut(2 * third, starts.length)];
  const expected = completeWindows(sim.records);
  const h = await harness(withDefaultModel);
  // The scores topic made to refuse every write of scores: with max.message.bytes 100 the broker answers
  // MESSAGE_TOO_LARGE to each partition's record batch of scores (a few hundred bytes) without appending it, an error
  // the producer does not retry, while a transaction's abort marker (about 80 bytes) still fits (a retriable refusal,
  // NOT_ENOUGH_REPLICAS say, is retried by the idempotent producer without end: the step waits, nothing is
  // committed, nothing to rewind).
  const sinkMaxBytes = (value: string) =>
    admin.alterConfigs({
      validateOnly: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: h.sink, configEntries: [{ name: 'max.message.bytes', value }] },
      ],
    });
  const failures = () => h.logs.filter((l) => /^delivering the scores of .* failed/.test(l)).length;
  try {
    await publish(h.source, a);
    await until(() => h.scores.length >= completeWindows(a).size, 30_000, 'part A scored');
    const afterA = await committedToEnd(h);
    expect(afterA.committed).toEqual(afterA.ends);

    await sinkMaxBytes('100');
    await publish(h.source, b);
    await until(() => failures() > 0, 60_000, 'a failed delivery');
    expect(h.logs.find((l) => /^delivering the scores of .* failed/.test(l))).toMatch(
      /\(The request included a message larger than the max message size the server will accept\); re-reading it from offset \d+$/,
    );
    // Nothing of B went out, so nothing of it may be committed.
    expect((await positions(h.source, h.config.groupId)).committed).toEqual(afterA.committed);

    // A restart while deliveries still fail: the new process reads from the last commit and fails on B too.
    const before = failures();
    await h.restart();
    await until(() => failures() > before, 60_000, 'a failed delivery after the restart');
    // Deliveries work again; C comes after B. A consumer that moved on past B would commit past it here.
    await sinkMaxBytes('1048588');
    await publish(h.source, c);
    await until(() => h.scores.length >= expected.size, 120_000, `${expected.size} scores`);
    expect((await committedToEnd(h)).committed).toEqual((await positions(h.source, h.config.groupId)).ends);
    // ...and a restart after it all re-reads nothing.
    await h.restart();
    await sleep(3000);
    const counts = countBy(h.scores);
    expect([...expected].filter((k) => !counts.has(`${k}|iforest`))).toEqual([]);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    expect(counts.size).toBe(expected.size);
    console.log(
      `failed delivery + restart: ${failures()} failed deliveries logged (each a rewind); ` +
        `${counts.size} windows (A ${completeWindows(a).size}, B ${completeWindows(b).size}, C ` +
        `${completeWindows(c).size}) scored once each`,
    );
  } finally {
    await sinkMaxBytes('1048588').catch(() => undefined);
    await h.close();
  }
});
