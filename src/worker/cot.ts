// Chain of trust, in the format generic-worker produces and scriptworker verifies:
//   public/chain-of-trust.json      {chainOfTrustVersion: 1, artifacts: {<name>: {sha256}}, task,
//                                    taskId, runId, workerGroup, workerId, environment}
//   public/chain-of-trust.json.sig  the detached ed25519 signature (64 raw bytes) of those bytes.
// Keys are generic-worker's: the private key file holds the base64 of the 32-byte ed25519 seed,
// a public key is the base64 of its 32 bytes.
// `verifyChain` checks what scriptworker and fetch-content's verify-hash would check, and names
// the first broken link.
import { DEFAULT_ZIP_ARTIFACT } from '../contract/index.js';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import fs from 'node:fs';
import type { QueueClient } from '../taskcluster/client.js';
import type { TaskDefinition } from '../taskcluster/types.js';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { getBuffer } from '../util/http.js';

export const COT_ARTIFACT = 'public/chain-of-trust.json';
export const COT_SIGNATURE_ARTIFACT = 'public/chain-of-trust.json.sig';

export interface ChainOfTrust {
  chainOfTrustVersion: 1;
  artifacts: Record<string, { sha256: string }>;
  task: Record<string, unknown>;
  taskId: string;
  runId: number;
  workerGroup: string;
  workerId: string;
  environment: Record<string, unknown>;
}

// DER prefixes of an ed25519 PKCS#8 private key and SPKI public key around the raw 32 bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function raw32(text: string, what: string): Buffer {
  const b = Buffer.from(text.trim(), 'base64');
  // generic-worker writes the 32-byte seed; a 64-byte Go private key (seed + public) also works.
  if (b.length !== 32 && b.length !== 64) {
    throw new ArchiveError(
      'invalid-config',
      `${what} must be the base64 of a 32-byte ed25519 key (got ${b.length} bytes)`,
    );
  }
  return b.subarray(0, 32);
}

/** The worker's signing key, from generic-worker's key file format. A config error otherwise. */
export function readSigningKey(file: string): KeyObject {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `cannot read the chain-of-trust signing key ${file}: ${errorMessage(e)}`,
    );
  }
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw32(text, `the chain-of-trust signing key ${file}`)]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** A public key given as base64 (generic-worker's `new-ed25519-keypair` output) or a file of it. */
export function readPublicKey(keyOrFile: string): KeyObject {
  let text = keyOrFile;
  if (!/^[A-Za-z0-9+/]{43}=$/.test(keyOrFile.trim())) {
    try {
      text = fs.readFileSync(keyOrFile, 'utf8');
    } catch (e) {
      throw new ArchiveError(
        'usage',
        `${keyOrFile} is neither a base64 ed25519 public key nor a readable file: ${errorMessage(e)}`,
      );
    }
  }
  return createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, raw32(text, 'the public key')]),
    format: 'der',
    type: 'spki',
  });
}

/** The base64 public key of a signing key (what verifiers are configured with). */
export function publicKeyBase64(key: KeyObject): string {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return der.subarray(SPKI_PREFIX.length).toString('base64');
}

/** The document's bytes as generic-worker writes them (Go's MarshalIndent, two spaces). */
export function encodeChainOfTrust(doc: ChainOfTrust): Buffer {
  const ordered = {
    chainOfTrustVersion: doc.chainOfTrustVersion,
    artifacts: Object.fromEntries(
      Object.keys(doc.artifacts)
        .sort()
        .map((k) => [k, { sha256: doc.artifacts[k]!.sha256 }]),
    ),
    task: doc.task,
    taskId: doc.taskId,
    runId: doc.runId,
    workerGroup: doc.workerGroup,
    workerId: doc.workerId,
    environment: doc.environment,
  };
  return Buffer.from(JSON.stringify(ordered, null, 2));
}

export function signChainOfTrust(bytes: Buffer, key: KeyObject): Buffer {
  return sign(null, bytes, key);
}

export const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Where a chain of trust broke, and what the checks that passed were. */
export interface ChainCheck {
  ok: boolean;
  /** The first broken link, one sentence naming the task, the artifact and both values. */
  broken?: string;
  checked: string[];
}

/** How verifyChain reads a task's artifacts and definition (real HTTP by default). */
export interface ArtifactReader {
  artifact(taskId: string, name: string): Promise<Buffer>;
  task(taskId: string): Promise<TaskDefinition>;
}

/**
 * Public artifacts over plain HTTP (the queue redirects to their storage); task definitions with
 * `queue` (reading a task needs queue:get-task:<taskId>).
 */
export function httpArtifactReader(rootUrl: string, queue: QueueClient): ArtifactReader {
  const base = `${rootUrl.replace(/\/$/, '')}/api/queue/v1/task`;
  return {
    async artifact(taskId, name) {
      const res = await getBuffer(`${base}/${taskId}/artifacts/${encodeURIComponent(name)}`);
      if (res.status !== 200) {
        throw new ArchiveError(
          res.status === 404 ? 'not-found' : 'unavailable',
          `${name} of task ${taskId}: HTTP ${res.status}`,
        );
      }
      return res.body;
    },
    task: (taskId) => queue.task(taskId),
  };
}

/** Artifact name in a queue artifact URL (`.../task/<id>/[runs/<n>/]artifacts/<name>`). */
function artifactNameOf(url: string): string | undefined {
  const m = /\/artifacts\/(.+)$/.exec(url.split('?')[0]!);
  return m ? decodeURIComponent(m[1]!) : undefined;
}

/**
 * Verify the chain of trust of `taskId`. For an archive task: the signature of its
 * chain-of-trust.json against one of `publicKeys`, that the document is for this task, and each
 * listed artifact's sha256. For a downstream task (payload env MOZHARNESS_SHA256): the chain of
 * the upstream task it depends on, then that MOZHARNESS_SHA256 is the sha256 the upstream's chain
 * of trust records for the archive MOZHARNESS_URL names.
 */
export async function verifyChain(
  taskId: string,
  opts: { publicKeys: KeyObject[]; reader: ArtifactReader },
): Promise<ChainCheck> {
  const checked: string[] = [];
  const broken = (why: string): ChainCheck => ({ ok: false, broken: why, checked });
  const { reader } = opts;
  const task = await reader.task(taskId);
  const env = (task.payload?.env ?? {}) as Record<string, string | undefined>;
  if (env.MOZHARNESS_SHA256) {
    const url = env.MOZHARNESS_URL ?? '';
    const upstreams: string[] = [];
    for (const dep of (task.dependencies ?? []) as string[]) {
      if (url.includes(`/task/${dep}/`)) upstreams.unshift(dep);
      else upstreams.push(dep);
    }
    const upstream = upstreams[0];
    if (!upstream) return broken(`task ${taskId} has MOZHARNESS_SHA256 but no upstream dependency`);
    const up = await verifyArchiveTask(upstream, opts, checked);
    if (!up.ok) return up;
    const name = artifactNameOf(url) ?? DEFAULT_ZIP_ARTIFACT;
    const recorded = up.doc!.artifacts[name]?.sha256;
    if (!recorded) {
      return broken(
        `the chain of trust of upstream task ${upstream} lists no ${name} (MOZHARNESS_URL of ${taskId})`,
      );
    }
    if (recorded !== env.MOZHARNESS_SHA256) {
      return broken(
        `task ${taskId} expects MOZHARNESS_SHA256 ${env.MOZHARNESS_SHA256} but the chain of trust ` +
          `of upstream task ${upstream} records ${recorded} for ${name}`,
      );
    }
    checked.push(`${taskId}: MOZHARNESS_SHA256 matches ${name} of ${upstream}`);
    return { ok: true, checked };
  }
  const r = await verifyArchiveTask(taskId, opts, checked);
  return r.ok ? { ok: true, checked } : r;
}

async function verifyArchiveTask(
  taskId: string,
  opts: { publicKeys: KeyObject[]; reader: ArtifactReader },
  checked: string[],
): Promise<ChainCheck & { doc?: ChainOfTrust }> {
  const broken = (why: string) => ({ ok: false, broken: why, checked });
  let bytes: Buffer;
  let sig: Buffer;
  try {
    bytes = await opts.reader.artifact(taskId, COT_ARTIFACT);
    sig = await opts.reader.artifact(taskId, COT_SIGNATURE_ARTIFACT);
  } catch (e) {
    return broken(`task ${taskId} has no readable chain of trust: ${errorMessage(e)}`);
  }
  if (!opts.publicKeys.some((k) => verify(null, bytes, k, sig))) {
    return broken(
      `the signature ${COT_SIGNATURE_ARTIFACT} of task ${taskId} does not verify against ` +
        `${opts.publicKeys.length === 1 ? 'the configured public key' : `any of the ${opts.publicKeys.length} configured public keys`}`,
    );
  }
  checked.push(`${taskId}: ${COT_ARTIFACT} signature`);
  let doc: ChainOfTrust;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    return broken(`${COT_ARTIFACT} of task ${taskId} is not JSON: ${errorMessage(e)}`);
  }
  if (doc.chainOfTrustVersion !== 1) {
    return broken(
      `${COT_ARTIFACT} of task ${taskId} has chainOfTrustVersion ${doc.chainOfTrustVersion}, not 1`,
    );
  }
  if (doc.taskId !== taskId) {
    return broken(`${COT_ARTIFACT} of task ${taskId} is for task ${doc.taskId}`);
  }
  for (const [name, { sha256 }] of Object.entries(doc.artifacts ?? {})) {
    let actual: string;
    try {
      actual = sha256Hex(await opts.reader.artifact(taskId, name));
    } catch (e) {
      return broken(`artifact ${name} of task ${taskId} cannot be read: ${errorMessage(e)}`);
    }
    if (actual !== sha256) {
      return broken(
        `artifact ${name} of task ${taskId} has sha256 ${actual}, but its chain of trust says ${sha256}`,
      );
    }
    checked.push(`${taskId}: ${name} sha256 ${sha256}`);
  }
  return { ok: true, checked, doc };
}
