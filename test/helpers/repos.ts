// Test helpers: a realistic mozharness tree, the same tree committed to real Mercurial and git
// repositories, and a real `hg serve` on loopback whose access log tells how many requests reached
// the repository server. CI runs as root with no hg/git configuration, so every command gets a
// private, fixed environment here.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const SAMPLE_SUBDIR = 'testing/mozharness';

/** A path inside the subdir whose full archive path is longer than 100 bytes (needs PAX). */
export const SAMPLE_LONG_PATH =
  'configs/single_locale/very/deeply/nested/configuration/directory/for/release/engineering/tests/linux64_devedition_l10n.py';
/** A non-ASCII file name inside the subdir. */
export const SAMPLE_UNICODE_PATH = 'docs/Résumé-überprüfung-测试.txt';
/** The executable script inside the subdir. */
export const SAMPLE_EXECUTABLE = 'scripts/desktop_unittest.py';
/** The in-tree symlink inside the subdir and its (relative) target. */
export const SAMPLE_SYMLINK = 'configs/default.py';
export const SAMPLE_SYMLINK_TARGET = 'unittests/linux_unittest.py';

/** Environment for hg: no user/system config, plain output, a fixed user. */
export const HG_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  HGRCPATH: '',
  HGPLAIN: '1',
  HGUSER: 'Mozharness Archive Tests <tests@mozharness-archive.invalid>',
  HGENCODING: 'utf-8',
  LANG: 'C.UTF-8',
};

/** Environment for git: no global/system config, fixed identity and dates. */
export const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Mozharness Archive Tests',
  GIT_AUTHOR_EMAIL: 'tests@mozharness-archive.invalid',
  GIT_COMMITTER_NAME: 'Mozharness Archive Tests',
  GIT_COMMITTER_EMAIL: 'tests@mozharness-archive.invalid',
  GIT_TERMINAL_PROMPT: '0',
};

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString('utf8')}`,
          ),
        );
    });
  });
}

export const hg = (repo: string, ...args: string[]): Promise<string> =>
  run('hg', args, repo, HG_ENV);
export const git = (repo: string, ...args: string[]): Promise<string> =>
  run('git', args, repo, GIT_ENV);

function put(file: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode);
}

/**
 * Write a realistic mozharness checkout into `dir`: `testing/mozharness` with nested dirs
 * (mozharness/base/, mozharness/mozilla/testing/, scripts/, configs/), an executable script, an
 * in-tree symlink, a path over 100 bytes and a non-ASCII file name, plus top-level dirs outside
 * the subdir (browser/, python/). `variant` changes the harness content (a different tree).
 */
export function writeSampleTree(dir: string, variant?: string): void {
  const h = path.join(dir, SAMPLE_SUBDIR);
  const v = variant ? `\n# variant: ${variant}\n` : '';
  put(path.join(dir, 'README.txt'), 'An Elegant Mozilla checkout.\n');
  put(path.join(dir, 'browser/app/moz.build'), "DIRS += ['profile']\n");
  put(path.join(dir, 'browser/app/profile/firefox.js'), 'pref("browser.startup.page", 1);\n');
  put(path.join(dir, 'python/mozbuild/setup.py'), 'from setuptools import setup\nsetup()\n');
  put(path.join(dir, 'testing/mochitest/runtests.py'), 'print("mochitest")\n');
  put(path.join(h, 'README.txt'), 'mozharness: the Mozilla test and release harness.\n');
  put(path.join(h, 'setup.py'), "from setuptools import setup\nsetup(name='mozharness')\n");
  put(path.join(h, 'requirements.txt'), 'mozinfo==1.2.3\nmozfile==3.0.0\n');
  put(path.join(h, 'mozharness/__init__.py'), "version = (0, 7)\nversion_string = '0.7'\n");
  put(path.join(h, 'mozharness/base/__init__.py'), '');
  put(
    path.join(h, 'mozharness/base/script.py'),
    '"""Generic script objects."""\nimport os\n\n\nclass BaseScript(object):\n    pass\n' + v,
  );
  put(path.join(h, 'mozharness/base/log.py'), 'import logging\n\nLOG = logging.getLogger()\n');
  put(
    path.join(h, 'mozharness/mozilla/testing/testbase.py'),
    'from mozharness.base.script import BaseScript\n\n\nclass TestingMixin(object):\n    pass\n',
  );
  put(
    path.join(h, SAMPLE_EXECUTABLE),
    '#!/usr/bin/env python\nfrom mozharness.mozilla.testing.testbase import TestingMixin\n',
    0o755,
  );
  put(path.join(h, 'scripts/fx_desktop_build.py'), '#!/usr/bin/env python\nprint("build")\n');
  put(
    path.join(h, 'configs/unittests/linux_unittest.py'),
    "config = {'virtualenv_path': 'venv', 'exes': {}}\n" + v,
  );
  put(path.join(h, 'configs/unittests/win_unittest.py'), "config = {'exes': {'python': 'c:/'}}\n");
  put(path.join(h, SAMPLE_LONG_PATH), "config = {'locales': ['de', 'fr']}\n");
  put(path.join(h, SAMPLE_UNICODE_PATH), 'Ünïcödé names survive the archive.\n');
  const link = path.join(h, SAMPLE_SYMLINK);
  fs.rmSync(link, { force: true });
  fs.symlinkSync(SAMPLE_SYMLINK_TARGET, link);
}

export interface SampleRepo {
  path: string;
  /** Full node ids / commit shas, oldest first. */
  revisions: string[];
}

export interface SampleRepoOptions {
  /** One commit per variant, oldest first (default: a single commit of the default tree). */
  variants?: Array<string | undefined>;
}

/** Create a Mercurial repository at `dir` holding the sample tree; one commit per variant. */
export async function createHgRepo(dir: string, opts: SampleRepoOptions = {}): Promise<SampleRepo> {
  fs.mkdirSync(dir, { recursive: true });
  await hg(dir, 'init');
  const revisions: string[] = [];
  const variants = opts.variants ?? [undefined];
  for (const [i, variant] of variants.entries()) {
    writeSampleTree(dir, variant);
    await hg(dir, 'addremove', '-q');
    await hg(dir, 'commit', '-q', '-m', `sample tree ${variant ?? 'default'}`, '-d', `${i} 0`);
    revisions.push((await hg(dir, 'log', '-r', '.', '-T', '{node}')).trim());
  }
  return { path: dir, revisions };
}

/** Create a git repository at `dir` holding the sample tree; one commit per variant. */
export async function createGitRepo(
  dir: string,
  opts: SampleRepoOptions = {},
): Promise<SampleRepo> {
  fs.mkdirSync(dir, { recursive: true });
  await git(dir, 'init', '-q', '-b', 'main');
  const revisions: string[] = [];
  const variants = opts.variants ?? [undefined];
  for (const [i, variant] of variants.entries()) {
    writeSampleTree(dir, variant);
    revisions.push(await gitCommitAll(dir, `sample tree ${variant ?? 'default'}`, i));
  }
  return { path: dir, revisions };
}

async function gitCommitAll(repo: string, message: string, seq: number): Promise<string> {
  await git(repo, 'add', '-A');
  const date = `${1_700_000_000 + seq} +0000`;
  await run('git', ['commit', '-q', '--allow-empty', '-m', message], repo, {
    ...GIT_ENV,
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_DATE: date,
  });
  return (await git(repo, 'rev-parse', 'HEAD')).trim();
}

function applyFiles(repo: string, files: Record<string, string | null>): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(repo, rel);
    if (content === null) fs.rmSync(file, { force: true });
    else put(file, content, fs.existsSync(file) ? fs.statSync(file).mode & 0o777 : 0o644);
  }
}

/** Add/modify (string) or delete (null) files in a Mercurial repo and commit; returns the node. */
export async function hgCommit(
  repo: string,
  files: Record<string, string | null>,
  message: string,
): Promise<string> {
  applyFiles(repo, files);
  await hg(repo, 'addremove', '-q');
  await hg(repo, 'commit', '-q', '-m', message);
  return (await hg(repo, 'log', '-r', '.', '-T', '{node}')).trim();
}

/** Add/modify (string) or delete (null) files in a git repo and commit; returns the commit sha. */
export async function gitCommit(
  repo: string,
  files: Record<string, string | null>,
  message: string,
): Promise<string> {
  applyFiles(repo, files);
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '--allow-empty', '-m', message);
  return (await git(repo, 'rev-parse', 'HEAD')).trim();
}

// `hg serve` on loopback with web.allow-archive, counting requests from its access log: the same
// server `local run` uses.
export { startHgServe, type HgServer } from '../../src/local/repo-server.js';
