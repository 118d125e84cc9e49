import { Committer, type TopicPartitionOffset } from './committer';

/** A commit that resolves when the test says so. */
function gate() {
  const calls: { offsets: TopicPartitionOffset[]; done: (error?: Error) => void }[] = [];
  const commit = (offsets: TopicPartitionOffset[]) =>
    new Promise<void>((resolve, reject) =>
      calls.push({ offsets, done: (error) => (error ? reject(error) : resolve()) }),
    );
  return { calls, commit };
}

const tick = () => new Promise((r) => setImmediate(r));

test('one commit in flight; positions handed over meanwhile go in the next one, the newest per partition', async () => {
  const { calls, commit } = gate();
  const c = new Committer(commit, () => undefined);
  c.add('t', 0, '5');
  expect(calls).toHaveLength(1);
  c.add('t', 0, '7');
  c.add('t', 1, '3');
  c.add('t', 0, '9');
  expect(calls).toHaveLength(1);
  calls[0]!.done();
  await tick();
  expect(calls).toHaveLength(2);
  expect(calls[1]!.offsets).toEqual([
    { topic: 't', partition: 0, offset: '9' },
    { topic: 't', partition: 1, offset: '3' },
  ]);
  const flushed = c.flush();
  calls[1]!.done();
  await flushed;
  expect(calls).toHaveLength(2);
});

test('a failed commit is logged; the next position is committed all the same', async () => {
  const { calls, commit } = gate();
  const lines: string[] = [];
  const c = new Committer(commit, (l) => lines.push(l));
  c.add('t', 2, '10');
  c.add('t', 2, '11');
  calls[0]!.done(new Error('rebalance in progress'));
  await tick();
  expect(lines).toEqual(['committing t[2]@10 failed (rebalance in progress); the next commit carries them on']);
  expect(calls[1]!.offsets).toEqual([{ topic: 't', partition: 2, offset: '11' }]);
  calls[1]!.done();
  await c.flush();
});

test('flush waits for what was handed over, and a position after an idle spell starts a commit again', async () => {
  const { calls, commit } = gate();
  const c = new Committer(commit, () => undefined);
  await c.flush();
  c.add('t', 0, '1');
  let flushed = false;
  const f = c.flush().then(() => (flushed = true));
  await tick();
  expect(flushed).toBe(false);
  calls[0]!.done();
  await f;
  expect(flushed).toBe(true);
  c.add('t', 0, '2');
  expect(calls).toHaveLength(2);
  calls[1]!.done();
  await c.flush();
});
