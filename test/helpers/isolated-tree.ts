// A copy of the in-tree CI configuration (.taskcluster.yml and taskcluster/) under a trust domain
// of its own, so a test on a shared Taskcluster deployment has its own task queues, scheduler ids,
// index namespaces, hooks and roles. Only the names change: every rule is the in-tree one.
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './cli.js';

export interface IsolatedTree {
  dir: string;
  /** <dir>/taskcluster */
  root: string;
  tcyml: string;
  trustDomain: string;
}

/** Copy .taskcluster.yml and taskcluster/ to `dir`, trust domain and index prefix `trustDomain`. */
export function isolatedTree(dir: string, trustDomain: string): IsolatedTree {
  fs.mkdirSync(dir, { recursive: true });
  const tcyml = fs
    .readFileSync(path.join(PROJECT_ROOT, '.taskcluster.yml'), 'utf8')
    .replace(/^(\s+)trustDomain: mozharness$/m, `$1trustDomain: ${trustDomain}`)
    .replace(/^(\s+)indexPrefix: mozharness$/m, `$1indexPrefix: ${trustDomain}`);
  fs.writeFileSync(path.join(dir, '.taskcluster.yml'), tcyml);
  const root = path.join(dir, 'taskcluster');
  fs.cpSync(path.join(PROJECT_ROOT, 'taskcluster'), root, { recursive: true });
  const configFile = path.join(root, 'config.yml');
  const config = fs
    .readFileSync(configFile, 'utf8')
    .replace(/^trust-domain: mozharness$/m, `trust-domain: ${trustDomain}`)
    .replace(/^index-prefix: mozharness$/m, `index-prefix: ${trustDomain}`)
    .replace(/task-queue-id: mozharness-/g, `task-queue-id: ${trustDomain}-`)
    .replace(/task-queue-id: releng-hardware\//g, `task-queue-id: ${trustDomain}-hw/`);
  fs.writeFileSync(configFile, config);
  return { dir, root, tcyml, trustDomain };
}
