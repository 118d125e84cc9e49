/** Runs `tasks` with at most `concurrency` in flight; rejects with the first failure (the others still finish). */
export async function runBounded(tasks: readonly (() => Promise<unknown>)[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
}
