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

/**
 * Print lines that hand the user credentials on purpose: `local up`'s hints for the user's own
 * shell, holding the credentials of the embedded services it just started on loopback. They are
 * the point of the output, so they are not scrubbed; nothing else may use this.
 */
export function printCredentialHints(lines: string[]): void {
  process.stdout.write(lines.join('\n') + '\n');
}
