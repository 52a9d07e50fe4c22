// Trust levels and the one order in which caches of several levels are read.
//
// A push of level L may read the content-digest cache of its own level and of every level above
// it, never below: a try push (level 1) can write level-1 caches, and a level-3 graph must not
// consume what a level-1 task wrote. Among the readable levels the most trusted comes first: two
// archives with the same tree digest are byte-identical, so the one a more trusted pool built is
// never worse, and it is the one a level-3 push would itself have produced.
import { ArchiveError } from '../util/errors.js';

export type TrustLevel = 1 | 2 | 3;
export const TRUST_LEVELS: readonly TrustLevel[] = [1, 2, 3];
export const HIGHEST_LEVEL: TrustLevel = 3;
export const LOWEST_LEVEL: TrustLevel = 1;

/** A level from a string or number ('1', 3, …), or a usage error naming the value. */
export function trustLevel(value: string | number): TrustLevel {
  const n = typeof value === 'number' ? value : /^[1-3]$/.test(value) ? Number(value) : NaN;
  if (n !== 1 && n !== 2 && n !== 3) {
    throw new ArchiveError('usage', `invalid trust level ${JSON.stringify(value)}: 1, 2 or 3`);
  }
  return n;
}

/**
 * The levels a reader of `level` may read, in the order they are tried: most trusted first,
 * down to the reader's own level and never below it.
 */
export function readableLevels(level: string | number = LOWEST_LEVEL): TrustLevel[] {
  const floor = trustLevel(level);
  const out: TrustLevel[] = [];
  for (let l = HIGHEST_LEVEL; l >= floor; l--) out.push(l as TrustLevel);
  return out;
}
