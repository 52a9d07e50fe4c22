// The dashboard in a real browser: Debian's headless Chromium driven by playwright-core. Two pushes
// to the local forest (one changes the harness, one does not) show as rows of Treeherder symbols;
// the archive task's page shows its log and artifacts; its Retrigger button (from actions.json)
// makes a new task that appears and completes without reloading the page.
// MOZHARNESS_ARCHIVE_SCREENSHOT=<file.png> also saves a screenshot of the pushes page
// (`npm run screenshot` writes docs/dashboard.png).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { ARCHIVE_LABEL } from '../src/contract/index.js';
import type { Forest } from '../src/local/forest.js';
import { queueClient } from '../src/taskcluster/client.js';
import { gitClone, pushOf, settled, startSampleForest } from './helpers/forest.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('dashboard in headless Chromium', function () {
  this.timeout(900_000);
  let tmp: string;
  let forest: Forest;
  let browser: BrowserContext;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs chromium`);
      console.log(`    skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-dashboard-'));
    forest = await startSampleForest(tmp, 'git');
    const queue = queueClient({
      rootUrl: forest.embedded.rootUrl,
      credentials: forest.embedded.credentials,
    });
    const dev = await gitClone(forest.repository!.url, path.join(tmp, 'dev'));
    const r1 = await dev.commitAndPush(
      {
        'testing/mozharness/configs/unittests/linux_unittest.py':
          'config = {"suites": ["xpcshell", "mochitest-plain"]}\n',
      },
      'Bug 20 - Fewer Linux suites (harness change)',
    );
    await settled(queue, (await pushOf(forest.pushLog, r1)).decisionTaskId);
    const r2 = await dev.commitAndPush(
      { 'toolkit/content/license.html': '<p>MPL-2.0 <b>and</b> more</p>\n' },
      'Bug 21 - License <script>alert(1)</script> wording (no harness change)',
    );
    await settled(queue, (await pushOf(forest.pushLog, r2)).decisionTaskId);
    browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1200, height: 760 },
    });
    // a loaded machine: bounds, not timing assumptions
    browser.setDefaultTimeout(180_000);
  });
  after(async () => {
    await browser?.close();
    await forest?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('shows both pushes, the archive task page, and a retrigger that appears and completes', async () => {
    const page = await browser.newPage();
    const alerts: string[] = [];
    page.on('dialog', (d) => {
      alerts.push(d.message());
      void d.dismiss();
    });
    await page.goto(forest.dashboardUrl!);
    const pushes = page.locator('section.push');
    assert.equal(await pushes.count(), 2);
    // newest first; the second push reused the archive and ran no archive task
    const [newest, oldest] = [pushes.nth(0), pushes.nth(1)];
    assert.match(await newest.locator('.message').innerText(), /Bug 21 - License <script>/);
    assert.match(await newest.locator('.badge').innerText(), /reused/);
    assert.match(await oldest.locator('.badge').innerText(), /built/);
    for (const p of [newest, oldest]) {
      const jobs = p.locator('a.job');
      assert.ok((await jobs.count()) >= 6, 'the decision, build and test symbols');
      assert.equal(await p.locator('a.job:not(.s-completed)').count(), 0, 'all completed');
    }
    assert.equal(await newest.locator(`a.job[data-label="${ARCHIVE_LABEL}"]`).count(), 0);
    if (process.env.MOZHARNESS_ARCHIVE_SCREENSHOT) {
      await page.screenshot({ path: process.env.MOZHARNESS_ARCHIVE_SCREENSHOT, fullPage: true });
    }

    await oldest.locator(`a.job[data-label="${ARCHIVE_LABEL}"]`).click();
    await page.waitForSelector('h1');
    assert.match(await page.locator('h1').innerText(), new RegExp(ARCHIVE_LABEL));
    assert.match(await page.locator('#log').innerText(), /\S/);
    const artifacts = await page.locator('ul.artifacts a').allInnerTexts();
    assert.ok(artifacts.includes('public/build/mozharness.tar.gz'), artifacts.join(', '));
    assert.ok(artifacts.includes('public/logs/live_backing.log'), artifacts.join(', '));
    assert.ok((await page.locator('h2:has-text("Dependents") + ul li').count()) >= 1);

    // the archive's own action from actions.json; the retrigger is a downstream task's
    assert.equal(await page.locator('form.action button', { hasText: 'Rebuild' }).count(), 1);
    const test = page.locator('h2:has-text("Dependents") + ul a.job[data-label^="test-"]').first();
    const label = (await test.getAttribute('data-label'))!;
    await test.click();
    await page.waitForSelector(`h1:has-text("${label}")`);
    await page.locator('form.action button', { hasText: 'Retrigger' }).click();
    await page.waitForURL(/\?action=/);
    const actionTaskId = await page.locator('p.flash a').innerText();
    // the action task and the retriggered task appear, without a reload, in the push the test
    // task belongs to (the archive's dependents include the pushes that reused it), and complete
    await page.waitForFunction(
      (label) => {
        // runs in the page
        const rows = [...(globalThis as any).document.querySelectorAll('section.push')] as any[];
        return rows.some((row) => {
          const jobs = [...row.querySelectorAll('a.job')] as any[];
          const copies = jobs.filter((j) => j.getAttribute('data-label') === label);
          const actions = jobs.filter((j) => j.getAttribute('data-label').startsWith('Action'));
          return (
            copies.length >= 2 &&
            actions.length >= 1 &&
            [...copies, ...actions].every((j) => j.getAttribute('data-state') === 'completed')
          );
        });
      },
      label,
      { timeout: 300_000, polling: 500 },
    );
    assert.match(actionTaskId, /^[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(alerts, [], 'no script from a push ran');
  });
});
