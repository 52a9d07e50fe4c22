// Serve a local Mercurial repository over HTTP with `hg serve` on loopback (hgweb with
// `web.allow-archive`, as hg.mozilla.org serves subdirectory archives), and count the requests it
// answers from its access log: that is how `local run` shows that a push which leaves the harness
// unchanged makes no request to the repository server. Git repositories are served the same way
// with git's own smart-HTTP CGI (`git http-backend`).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

export interface HgServer {
  url: string;
  /** Request paths answered so far, oldest first. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Environment for hg commands that must not depend on the user's configuration. */
export const HG_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  HGRCPATH: '',
  HGPLAIN: '1',
  HGENCODING: 'utf-8',
  LANG: 'C.UTF-8',
};

export interface HgServeOptions {
  port?: number;
  prefix?: string;
  /** Accept pushes (loopback only, no authentication: a developer's own forest). */
  allowPush?: boolean;
  /** More `--config section.name=value` settings (hooks…). */
  config?: string[];
}

function hgServeArgs(repoPath: string, opts: HgServeOptions, logDir: string): string[] {
  return [
    'serve',
    '-R',
    repoPath,
    '-a',
    '127.0.0.1',
    '-p',
    String(opts.port ?? 0),
    '--accesslog',
    path.join(logDir, 'access.log'),
    '--errorlog',
    path.join(logDir, 'error.log'),
    '--config',
    'web.allow-archive=gz,bz2,zip',
    ...(opts.allowPush
      ? ['--config', 'web.allow_push=*', '--config', 'web.push_ssl=false']
      : ['--config', 'web.allow_push=']),
    ...(opts.config ?? []).flatMap((c) => ['--config', c]),
    ...(opts.prefix ? ['--prefix', opts.prefix] : []),
  ];
}

/** The port `hg serve` says it is bound to, or an error with its output when it stops first. */
function boundPort(child: ChildProcessByStdio<null, Readable, Readable>): Promise<number> {
  let output = '';
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hg serve did not start: ${output}`)), 20000);
    const onData = (d: Buffer) => {
      output += d.toString('utf8');
      const m = /bound to 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hg serve exited ${code}: ${output}`));
    });
  });
}

/** The request paths of an hgweb access log, oldest first. */
function accessLogPaths(file: string): string[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const paths: string[] = [];
  for (const line of text.split('\n')) {
    const m = /"[A-Z]+ (\S+) HTTP\/[\d.]+"/.exec(line);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

/**
 * Start `hg serve` for `repoPath` on 127.0.0.1. With `prefix` the repository is served under
 * `/<prefix>` (as hg.mozilla.org serves `/mozilla-central`), so its URL names the project.
 */
export async function startHgServe(repoPath: string, opts: HgServeOptions = {}): Promise<HgServer> {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hg-serve-'));
  const child = spawn('hg', hgServeArgs(repoPath, opts, logDir), {
    cwd: repoPath,
    env: HG_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await boundPort(child);
  child.removeAllListeners('exit');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}${opts.prefix ? `/${opts.prefix}` : ''}`,
    get requests(): string[] {
      return accessLogPaths(path.join(logDir, 'access.log'));
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(logDir, { recursive: true, force: true });
    },
  };
}

/** The server of a repository: hgweb (`hg serve`) or git smart HTTP. Same shape for both. */
export type RepoServer = HgServer;

/** A git smart-HTTP server, which also counts the response bytes it has sent. */
export type GitHttpServer = RepoServer & { readonly bytesSent: number };

/** The CGI environment of one `git http-backend` request (and nothing of the caller's). */
function gitBackendEnv(
  req: http.IncomingMessage,
  u: URL,
  root: string,
  allowPush: boolean,
): NodeJS.ProcessEnv {
  const pushConfig: Record<string, string> = allowPush
    ? {
        GIT_CONFIG_COUNT: '2',
        GIT_CONFIG_KEY_0: 'http.receivepack',
        GIT_CONFIG_VALUE_0: 'true',
        GIT_CONFIG_KEY_1: 'receive.denyCurrentBranch',
        GIT_CONFIG_VALUE_1: 'updateInstead',
      }
    : {};
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: root,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: decodeURIComponent(u.pathname),
    QUERY_STRING: u.search.slice(1),
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    CONTENT_LENGTH: req.headers['content-length'] ?? '',
    GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
    HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
    REMOTE_ADDR: '127.0.0.1',
    ...pushConfig,
  };
}

/** Relay a CGI's answer: its header block becomes the status and headers, the rest the body. */
function relayCgi(cgi: ChildProcessByStdio<Writable, Readable, null>, res: http.ServerResponse) {
  let head = Buffer.alloc(0);
  let headersDone = false;
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const i = line.indexOf(':');
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
      else res.setHeader(k, v);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  cgi.on('close', () => {
    if (!headersDone) res.writeHead(500);
    res.end();
  });
}

/**
 * Serve a local git repository (bare or not) over smart HTTP on 127.0.0.1 at `/<prefix>`
 * (default: the directory's name), through `git http-backend`, recording each request path.
 */
export async function startGitHttp(
  repoPath: string,
  opts: {
    prefix?: string;
    /**
     * Accept pushes (git-receive-pack; loopback only, no authentication). A push to the branch
     * checked out in a non-bare repository updates its work tree when that is clean.
     */
    allowPush?: boolean;
  } = {},
): Promise<GitHttpServer> {
  const prefix = opts.prefix ?? path.basename(repoPath);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'git-http-'));
  fs.symlinkSync(path.resolve(repoPath), path.join(root, prefix));
  const requests: string[] = [];
  let bytesSent = 0;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer) => {
      bytesSent += chunk.length;
      return write(chunk);
    }) as typeof res.write;
    requests.push(u.pathname + u.search);
    const cgi = spawn('git', ['http-backend'], {
      env: gitBackendEnv(req, u, root, opts.allowPush === true),
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    cgi.stdin.on('error', () => {});
    relayCgi(cgi, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${prefix}`,
    get requests() {
      return [...requests];
    },
    get bytesSent() {
      return bytesSent;
    },
    async close() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
