// Structured logging: one line per event. On a terminal the line is human-readable; otherwise
// (or with json: true) it is one JSON object. Secrets registered with `redact` never appear:
// every string field and message is scrubbed before it is written, and so is the userinfo
// (`user:password@`) of any URL.

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  /** A logger that adds these fields to every line. */
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Where lines go (default process.stderr). */
  write?: (line: string) => void;
  json?: boolean;
  level?: Level;
  fields?: Record<string, unknown>;
  now?: () => Date;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const SECRET_KEYS =
  /^(accessToken|secretAccessKey|sessionToken|certificate|password|secret|staticSecret|authorization|x-amz-security-token)$/i;
const secrets = new Set<string>();

/** Register a secret value so that no logger ever prints it. */
export function redact(secret: string | undefined): void {
  if (secret && secret.length >= 6) secrets.add(secret);
}

// `scheme://userinfo@`: the userinfo ends at the first '/', '?', '#' or whitespace after the
// scheme, and at its last '@' (RFC 3986 3.2.1).
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi;

/** A URL (or any text holding URLs) with the userinfo of each URL replaced by `[redacted]`. */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, '$1[redacted]@');
}

/** Register the password (or, without one, the user) of every URL in `url` as a secret. */
export function redactUrlSecrets(url: string | undefined): void {
  if (!url) return;
  for (const m of url.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/([^\s/?#"'<>]*)@/gi)) {
    const info = m[1]!;
    const colon = info.indexOf(':');
    const secret = colon >= 0 ? info.slice(colon + 1) : info;
    redact(secret);
    try {
      redact(decodeURIComponent(secret));
    } catch {
      // not percent-encoded: the raw form is registered
    }
  }
}

export function scrub(text: string): string {
  // each pattern is tried only on text holding its literal part ('://', 'Hawk id="', '='): most
  // log fields hold none, and the regular expressions cost more than the line's other work
  let out = text.includes('://') ? redactUrl(text) : text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
  // Hawk headers and signed-URL signatures never reach a log either.
  if (out.includes('Hawk id="')) out = out.replace(/\bHawk id="[^"]*"[^\n]*/g, 'Hawk [redacted]');
  if (out.includes('=')) {
    out = out.replace(
      /([?&](?:bewit|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s"]+/gi,
      '$1[redacted]',
    );
  }
  return out;
}

/**
 * A value with every secret taken out: registered secrets and secret patterns scrubbed from its
 * strings, and the values of secret-named keys (accessToken, password, …) replaced, at any depth.
 */
export function clean(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return scrub(value.message);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => clean(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.test(k) ? '[redacted]' : clean(v, depth + 1);
  }
  return out;
}

function human(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const json = opts.json ?? !process.stderr.isTTY;
  const min =
    ORDER[opts.level ?? ((process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL as Level) || 'info')] ?? 20;
  const now = opts.now ?? (() => new Date());
  const base = opts.fields ?? {};
  const emit = (level: Level, event: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const all = clean({ ...base, ...fields }) as Record<string, unknown>;
    const time = now().toISOString();
    if (json) write(JSON.stringify({ time, level, event, ...all }));
    else
      write(
        `${time} ${level.toUpperCase().padEnd(5)} ${event}${Object.keys(all).length ? ' ' + human(all) : ''}`,
      );
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (fields) => createLogger({ ...opts, write, json, now, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (the default for library calls that were given none). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
