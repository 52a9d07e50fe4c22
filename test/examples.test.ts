// The example configurations the README points deployers at stay valid.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as yaml from 'js-yaml';
import { loadLookupConfig } from '../src/lookup/config.js';
import { validateWorkerConfig } from '../src/worker/config.js';

describe('examples/', () => {
  it('worker.yml validates against schemas/worker-config.json', () => {
    const raw = yaml.load(fs.readFileSync('examples/worker.yml', 'utf8')) as Record<
      string,
      unknown
    >;
    const config = validateWorkerConfig(raw);
    assert.equal(config.taskQueueId, 'mozharness-3/archive');
    assert.deepEqual(config.allowRepos, ['https://hg.mozilla.org/']);
  });

  it('lookup.yml validates against schemas/lookup-config.json', () => {
    const config = loadLookupConfig('examples/lookup.yml');
    assert.ok(config.projects['mozilla-central']);
  });
});
