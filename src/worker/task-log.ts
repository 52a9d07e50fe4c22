// The task log (`public/logs/live_backing.log`): one timestamped line per step, retry reason and
// test output line, scrubbed of every registered secret. Each line is also one structured event
// on the worker's own log.
import fs from 'node:fs';
import { scrub, type Logger } from '../util/log.js';

function render(fields?: Record<string, unknown>): string {
  if (!fields) return '';
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const s = v instanceof Error ? v.message : typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${typeof v === 'string' && !/\s/.test(s) && s !== '' ? s : JSON.stringify(s)}`;
    });
  return parts.length ? ' ' + parts.join(' ') : '';
}

export class TaskLog {
  readonly file: string;
  private readonly worker: Logger;
  private closed = false;
  lines = 0;

  constructor(file: string, workerLog: Logger) {
    this.file = file;
    this.worker = workerLog;
    fs.writeFileSync(file, '');
  }

  private write(level: string, text: string): void {
    if (this.closed) return;
    const line = `[${new Date().toISOString()}] ${level.padEnd(5)} ${scrub(text)}`;
    fs.appendFileSync(this.file, line.replace(/\r?\n(?!$)/g, '\n    ') + '\n');
    this.lines++;
  }

  /** A step or fact, e.g. `step("build", {repository, revision})`. */
  info(event: string, fields?: Record<string, unknown>): void {
    this.write('INFO', event + render(fields));
    this.worker.info(event, fields);
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.write('WARN', event + render(fields));
    this.worker.warn(event, fields);
  }
  error(event: string, fields?: Record<string, unknown>): void {
    this.write('ERROR', event + render(fields));
    this.worker.error(event, fields);
  }
  /** Output of the test command, verbatim (scrubbed), not copied to the worker log. */
  output(stream: 'stdout' | 'stderr', line: string): void {
    this.write(stream === 'stdout' ? 'OUT' : 'ERR', line);
  }

  /** A Logger view for library code (the archive engine logs fetches and retries here). */
  asLogger(): Logger {
    const make = (base: Record<string, unknown>): Logger => ({
      debug: (e, f) => this.worker.debug(e, { ...base, ...f }),
      info: (e, f) => this.info(e, { ...base, ...f }),
      warn: (e, f) => this.warn(e, { ...base, ...f }),
      error: (e, f) => this.error(e, { ...base, ...f }),
      child: (f) => make({ ...base, ...f }),
    });
    return make({});
  }

  close(): void {
    this.closed = true;
  }
}
