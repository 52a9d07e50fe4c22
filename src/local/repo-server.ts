// Serve a local Mercurial repository over HTTP with `hg serve` on loopback (hgweb with
// `web.allow-archive`, as hg.mozilla.org serves subdirectory archives), and count the requests it
// answers from its access log: that is how `local run` shows that a push which leaves the harness
// unchanged makes no request to the repository server.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/**
 * Start `hg serve` for `repoPath` on 127.0.0.1. With `prefix` the repository is served under
 * `/<prefix>` (as hg.mozilla.org serves `/mozilla-central`), so its URL names the project.
 */
export async function startHgServe(
  repoPath: string,
  opts: { port?: number; prefix?: string } = {},
): Promise<HgServer> {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hg-serve-'));
  const accessLog = path.join(logDir, 'access.log');
  const errorLog = path.join(logDir, 'error.log');
  const child = spawn(
    'hg',
    [
      'serve',
      '-R',
      repoPath,
      '-a',
      '127.0.0.1',
      '-p',
      String(opts.port ?? 0),
      '--accesslog',
      accessLog,
      '--errorlog',
      errorLog,
      '--config',
      'web.allow-archive=gz,bz2,zip',
      '--config',
      'web.allow_push=',
      ...(opts.prefix ? ['--prefix', opts.prefix] : []),
    ],
    { cwd: repoPath, env: HG_ENV, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
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
  child.removeAllListeners('exit');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}${opts.prefix ? `/${opts.prefix}` : ''}`,
    get requests(): string[] {
      let text = '';
      try {
        text = fs.readFileSync(accessLog, 'utf8');
      } catch {
        return [];
      }
      const paths: string[] = [];
      for (const line of text.split('\n')) {
        const m = /"[A-Z]+ (\S+) HTTP\/[\d.]+"/.exec(line);
        if (m) paths.push(m[1]!);
      }
      return paths;
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
