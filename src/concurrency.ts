/**
 * Maps items through an async function with at most `limit` calls in flight, keeping order.
 * The first failure stops new work from starting and is rethrown once the calls in flight end.
 */
export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/** A held slot: give it back once, when the work ends. */
export type Release = () => void;

export interface Slots {
  /** A free slot, waiting at most `waitMs` for one (first come, first served); undefined if none came free. */
  take(waitMs: number): Promise<Release | undefined>;
}

/** At most `count` holders at once, within one process. */
export function createSlots(count: number): Slots {
  let free = count;
  const waiting: Array<(release: Release) => void> = [];
  const releaser = (): Release => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = waiting.shift();
      if (next) next(releaser());
      else free++;
    };
  };
  return {
    take(waitMs) {
      if (free > 0) {
        free--;
        return Promise.resolve(releaser());
      }
      return new Promise((resolve) => {
        const handOver = (release: Release) => {
          clearTimeout(timer);
          resolve(release);
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(handOver), 1);
          resolve(undefined);
        }, waitMs);
        waiting.push(handOver);
      });
    },
  };
}
