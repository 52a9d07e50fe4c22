// Deterministic task ids: a valid v4 slugid derived from a sha256 of a seed string, so every
// process that computes the same seed names the same task, and the queue's idempotent createTask
// creates it once.
import { hash } from 'node:crypto';

/** A "nice" v4 slugid (first bit clear, so it never starts with '-') from a seed string. */
export function deterministicSlugid(seed: string): string {
  const b = hash('sha256', seed, 'buffer').subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x40; // version 4
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  b[0] = b[0]! & 0x7f; // nice
  return b.toString('base64url');
}
