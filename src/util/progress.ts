// A small progress bar for long transfers, drawn on stderr when it is a terminal; nothing at all
// otherwise (CI logs and task logs stay clean).

export interface Progress {
  /** Bytes done so far, and the total when known. */
  update(done: number, total?: number): void;
  /** Draw the final state and end the line. */
  finish(): void;
}

export interface ProgressOptions {
  label: string;
  total?: number;
  /** Default process.stderr; nothing is drawn unless it is a TTY (or `force`). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  force?: boolean;
  /** Minimum interval between redraws (default 100 ms). */
  intervalMs?: number;
  now?: () => number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** One line of progress: `label [#####.....]  45%  12.3 MiB / 27.0 MiB  3.1 MiB/s`. */
export function renderProgress(
  label: string,
  done: number,
  total: number | undefined,
  bytesPerSec: number,
  width = 80,
): string {
  const rate = `${formatBytes(Math.round(bytesPerSec))}/s`;
  if (total === undefined || total <= 0) {
    return `${label}  ${formatBytes(done)}  ${rate}`;
  }
  const frac = Math.min(1, Math.max(0, done / total));
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const tail = `${pct}  ${formatBytes(done)} / ${formatBytes(total)}  ${rate}`;
  const barWidth = Math.max(10, Math.min(40, width - label.length - tail.length - 6));
  const filled = Math.round(frac * barWidth);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${tail}`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.force || Boolean(stream.isTTY);
  if (!enabled) return { update() {}, finish() {} };
  const now = opts.now ?? (() => Date.now());
  const interval = opts.intervalMs ?? 100;
  const start = now();
  let last = -Infinity;
  let total = opts.total;
  let done = 0;
  let finished = false;
  const draw = () => {
    const elapsed = Math.max(1, now() - start) / 1000;
    const line = renderProgress(opts.label, done, total, done / elapsed, stream.columns ?? 80);
    stream.write(`\r${line}\x1b[K`);
  };
  return {
    update(d, t) {
      if (finished) return;
      done = d;
      if (t !== undefined) total = t;
      const n = now();
      if (n - last >= interval) {
        last = n;
        draw();
      }
    },
    finish() {
      if (finished) return;
      finished = true;
      draw();
      stream.write('\n');
    },
  };
}
