// The sample repository `npm start` replays when no --repo is given: a small tree shaped like
// mozilla-central, with a realistic testing/mozharness harness (scripts, configs, a library and a
// unit-test suite that the archive task's `test` command runs) beside other top-level directories.
// Three pushes: one that creates the harness, one that touches only other directories, and one that
// changes the harness.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type Vcs = 'hg' | 'git';

export interface SamplePush {
  revision: string;
  description: string;
  touchesHarness: boolean;
}

export interface SampleRepo {
  path: string;
  vcs: Vcs;
  pushes: SamplePush[];
}

const HARNESS: Record<string, string> = {
  'testing/mozharness/README.txt':
    'Mozharness: a configuration-driven script harness.\nRun scripts/<name>.py --config <file>.\n',
  'testing/mozharness/mozharness/__init__.py':
    "version = (0, 7)\nversion_string = '.'.join(map(str, version))\n",
  'testing/mozharness/mozharness/base/__init__.py': '',
  'testing/mozharness/mozharness/base/config.py': `"""Configuration loading for mozharness scripts."""
import os
import runpy


def load_config(path):
    """Load a python config file; it must define a dict named config."""
    if not os.path.exists(path):
        raise IOError("config file not found: %s" % path)
    values = runpy.run_path(path)
    if "config" not in values or not isinstance(values["config"], dict):
        raise ValueError("%s does not define a dict named config" % path)
    return dict(values["config"])


def merge(*configs):
    out = {}
    for c in configs:
        out.update(c)
    return out
`,
  'testing/mozharness/mozharness/base/log.py': `"""Minimal mozharness-style logging."""
import sys
import time


class SimpleLogger(object):
    def __init__(self, name="mozharness", stream=None):
        self.name = name
        self.stream = stream or sys.stdout

    def log(self, level, message):
        self.stream.write("%s %8s - %s\\n" % (time.strftime("%H:%M:%S"), level, message))
        self.stream.flush()

    def info(self, message):
        self.log("INFO", message)

    def error(self, message):
        self.log("ERROR", message)
`,
  'testing/mozharness/mozharness/base/script.py': `"""The script base class: ordered actions driven by config files."""
import argparse
import os

from mozharness.base.config import load_config, merge
from mozharness.base.log import SimpleLogger

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BaseScript(object):
    all_actions = []
    default_actions = []

    def __init__(self, argv=None):
        parser = argparse.ArgumentParser()
        parser.add_argument("--config-file", "--cfg", "--config", action="append", default=[],
                            dest="config_files")
        parser.add_argument("--action", action="append", default=[])
        args, extra = parser.parse_known_args(argv)
        self.log = SimpleLogger()
        configs = []
        for c in args.config_files:
            path = c if os.path.isabs(c) else os.path.join(HERE, "configs", c)
            configs.append(load_config(path))
            self.log.info("loaded config %s" % c)
        self.config = merge(*configs)
        # script-specific options (--this-chunk=1, --custom-build-variant-cfg=debug, ...)
        for option in extra:
            if option.startswith("--") and "=" in option:
                key, value = option[2:].split("=", 1)
                self.config[key.replace("-", "_")] = value
        self.actions = args.action or list(self.default_actions)

    def run(self):
        for action in self.actions:
            if action not in self.all_actions:
                self.log.error("unknown action %s" % action)
                return 1
            self.log.info("##### Running %s step." % action)
            method = getattr(self, action.replace("-", "_"))
            method()
        self.log.info("Completed successfully.")
        return 0
`,
  'testing/mozharness/mozharness/mozilla/__init__.py': '',
  'testing/mozharness/mozharness/mozilla/testing/__init__.py': '',
  'testing/mozharness/mozharness/mozilla/testing/unittest.py': `"""Helpers for running unit-test suites."""


def summarize(passed, failed, todo=0):
    return "%d passed, %d failed, %d todo" % (passed, failed, todo)
`,
  'testing/mozharness/scripts/fx_desktop_build.py': `#!/usr/bin/env python3
"""Build Firefox (simulated): prints the steps a build would run."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mozharness.base.script import BaseScript  # noqa: E402


class FxDesktopBuild(BaseScript):
    all_actions = ["clobber", "build", "package"]
    default_actions = ["clobber", "build", "package"]

    def clobber(self):
        self.log.info("clobbering %s" % self.config.get("objdir", "obj-firefox"))

    def build(self):
        variant = self.config.get("custom_build_variant_cfg", "opt")
        self.log.info("mach build (%s) with mozconfig %s" % (variant, self.config.get("mozconfig", "default")))

    def package(self):
        self.log.info("packaging for %s" % self.config.get("platform", "unknown"))


if __name__ == "__main__":
    sys.exit(FxDesktopBuild(sys.argv[1:]).run())
`,
  'testing/mozharness/scripts/desktop_unittest.py': `#!/usr/bin/env python3
"""Run desktop unit-test suites (simulated)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mozharness.base.script import BaseScript  # noqa: E402
from mozharness.mozilla.testing.unittest import summarize  # noqa: E402


class DesktopUnittest(BaseScript):
    all_actions = ["download-and-extract", "run-tests"]
    default_actions = ["download-and-extract", "run-tests"]

    def download_and_extract(self):
        self.log.info("would download %s" % self.config.get("installer_url", "the build"))

    def run_tests(self):
        suites = self.config.get("suites", ["xpcshell"])
        chunk = self.config.get("this_chunk")
        if chunk:
            self.log.info("chunk %s of %s" % (chunk, self.config.get("total_chunk", "?")))
        for suite in suites:
            self.log.info("TEST-START | %s" % suite)
        self.log.info(summarize(len(suites), 0))


if __name__ == "__main__":
    sys.exit(DesktopUnittest(sys.argv[1:]).run())
`,
  'testing/mozharness/configs/builds/releng_base_firefox.py':
    'config = {\n    "app_name": "browser",\n    "objdir": "obj-firefox",\n}\n',
  'testing/mozharness/configs/builds/releng_base_linux_64_builds.py':
    'config = {\n    "platform": "linux64",\n    "mozconfig": "browser/config/mozconfigs/linux64/nightly",\n}\n',
  'testing/mozharness/configs/builds/releng_base_mac_64_cross_builds.py':
    'config = {\n    "platform": "macosx64",\n    "mozconfig": "browser/config/mozconfigs/macosx64/nightly",\n}\n',
  'testing/mozharness/configs/unittests/linux_unittest.py':
    'config = {\n    "suites": ["xpcshell", "mochitest-plain", "reftest"],\n}\n',
  'testing/mozharness/configs/unittests/mac_unittest.py':
    'config = {\n    "suites": ["xpcshell", "mochitest-plain"],\n}\n',
  'testing/mozharness/configs/remove_executables.py':
    'config = {\n    "remove_executables": True,\n}\n',
  'testing/mozharness/test/__init__.py': '',
  'testing/mozharness/test/test_base_config.py': `import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mozharness.base.config import load_config, merge  # noqa: E402


class TestConfig(unittest.TestCase):
    def test_load(self):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("config = {'a': 1}\\n")
        try:
            self.assertEqual(load_config(f.name), {"a": 1})
        finally:
            os.unlink(f.name)

    def test_merge(self):
        self.assertEqual(merge({"a": 1}, {"a": 2, "b": 3}), {"a": 2, "b": 3})


if __name__ == "__main__":
    unittest.main()
`,
  'testing/mozharness/test/test_unittest_summary.py': `import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mozharness.mozilla.testing.unittest import summarize  # noqa: E402


class TestSummary(unittest.TestCase):
    def test_summary(self):
        self.assertEqual(summarize(3, 0), "3 passed, 0 failed, 0 todo")


if __name__ == "__main__":
    unittest.main()
`,
};

const OTHER: Record<string, string> = {
  'README.txt':
    'A sample tree shaped like mozilla-central, made by `mozharness-archive local run`.\n',
  'browser/app/moz.build': "DIRS += ['profile']\n",
  'browser/config/mozconfigs/linux64/nightly': 'ac_add_options --enable-optimize\n',
  'python/mozbuild/mozbuild/__init__.py': '',
  'toolkit/content/license.html': '<p>MPL-2.0</p>\n',
};

const EXECUTABLE = new Set([
  'testing/mozharness/scripts/fx_desktop_build.py',
  'testing/mozharness/scripts/desktop_unittest.py',
]);

function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    if (EXECUTABLE.has(rel)) fs.chmodSync(p, 0o755);
  }
}

/** Copy the in-tree CI configuration (.taskcluster.yml, taskcluster/) of this project into `root`. */
export function copyInTreeConfig(projectRoot: string, root: string): void {
  const tcyml = path.join(projectRoot, '.taskcluster.yml');
  if (fs.existsSync(tcyml)) fs.copyFileSync(tcyml, path.join(root, '.taskcluster.yml'));
  const dir = path.join(projectRoot, 'taskcluster');
  if (fs.existsSync(dir)) fs.cpSync(dir, path.join(root, 'taskcluster'), { recursive: true });
}

const AUTHOR = 'Sample Developer <dev@example.com>';

async function commit(vcs: Vcs, repo: string, message: string, when: number): Promise<string> {
  const date = `${when} 0`;
  if (vcs === 'hg') {
    await run('hg', ['addremove', '-q'], { cwd: repo });
    await run('hg', ['commit', '-q', '-u', AUTHOR, '-d', date, '-m', message], { cwd: repo });
    const { stdout } = await run('hg', ['log', '-r', '.', '-T', '{node}'], { cwd: repo });
    return stdout.trim();
  }
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Sample Developer',
    GIT_AUTHOR_EMAIL: 'dev@example.com',
    GIT_COMMITTER_NAME: 'Sample Developer',
    GIT_COMMITTER_EMAIL: 'dev@example.com',
    GIT_AUTHOR_DATE: `@${when} +0000`,
    GIT_COMMITTER_DATE: `@${when} +0000`,
  };
  await run('git', ['add', '-A'], { cwd: repo, env });
  await run('git', ['commit', '-q', '-m', message], { cwd: repo, env });
  const { stdout } = await run('git', ['rev-parse', 'HEAD'], { cwd: repo, env });
  return stdout.trim();
}

/**
 * Create the sample repository in `dir` (which must not exist or be empty) with three pushes.
 * `projectRoot` is where this project's `.taskcluster.yml` and `taskcluster/` are copied from, so
 * the tree carries its own CI configuration, as mozilla-central does.
 */
export async function createSampleRepo(
  dir: string,
  vcs: Vcs,
  projectRoot: string,
): Promise<SampleRepo> {
  fs.mkdirSync(dir, { recursive: true });
  if (vcs === 'hg') await run('hg', ['init', dir]);
  else await run('git', ['init', '-q', '-b', 'main', dir]);
  const t0 = 1767225600; // 2026-01-01T00:00:00Z: fixed dates give the same revisions on every machine
  writeFiles(dir, { ...HARNESS, ...OTHER });
  copyInTreeConfig(projectRoot, dir);
  const r1 = await commit(vcs, dir, 'Bug 1 - Move mozharness into the tree', t0);
  writeFiles(dir, { 'browser/app/moz.build': "DIRS += ['profile', 'themes']\n" });
  const r2 = await commit(
    vcs,
    dir,
    'Bug 2 - Build the browser themes (no harness change)',
    t0 + 3600,
  );
  writeFiles(dir, {
    'testing/mozharness/configs/unittests/linux_unittest.py':
      'config = {\n    "suites": ["xpcshell", "mochitest-plain", "reftest", "crashtest"],\n}\n',
  });
  const r3 = await commit(vcs, dir, 'Bug 3 - Run crashtests on Linux (harness change)', t0 + 7200);
  return {
    path: dir,
    vcs,
    pushes: [
      { revision: r1, description: 'creates the harness', touchesHarness: true },
      { revision: r2, description: 'changes only browser/', touchesHarness: false },
      { revision: r3, description: 'changes the harness', touchesHarness: true },
    ],
  };
}
