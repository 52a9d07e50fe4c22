// Shared printing helpers for commands: --json prints exactly one JSON document on stdout.
// Everything printed is scrubbed of registered secrets and of the userinfo of any URL.
import { scrub } from '../util/log.js';

export function printJson(value: unknown): void {
  process.stdout.write(scrub(JSON.stringify(value, null, 2)) + '\n');
}

export function printLines(lines: string[]): void {
  process.stdout.write(scrub(lines.join('\n')) + '\n');
}

/** Print `value` as JSON when asked, otherwise the human lines. */
export function printResult(
  json: boolean | undefined,
  value: unknown,
  human: () => string[],
): void {
  if (json) printJson(value);
  else printLines(human());
}
