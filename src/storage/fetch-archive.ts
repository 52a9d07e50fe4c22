// Download an archive (tar.gz or zip) and unpack it safely: the one path `fetch`, `deploy` and
// mount verification share. The download goes to a temporary file beside the destination, is
// verified (sha256, size) while streaming, and is unpacked by the engine's safe unpack, so the
// destination appears complete and checked, or not at all; the temporary file never outlives it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { unpackArchive, type UnpackLimits } from '../archive/index.js';
import { downloadVerified, type DownloadOptions } from './download.js';

export interface FetchArchiveOptions extends DownloadOptions {
  /** The declared format ('tar.gz' or 'zip'); default: told from the file's first bytes. */
  format?: string;
  limits?: Partial<UnpackLimits>;
  /** Where the download is kept while it is verified and unpacked (default: beside `dest`). */
  downloadDir?: string;
}

export async function downloadAndUnpack(
  url: string,
  dest: string,
  opts: FetchArchiveOptions = {},
): Promise<{ sha256: string; size: number; files: number; bytes: number }> {
  const { format, limits, downloadDir, ...download } = opts;
  const target = path.resolve(dest);
  const parent = downloadDir ?? path.dirname(target);
  await fs.promises.mkdir(parent, { recursive: true });
  const tmp = path.join(
    parent,
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.archive`,
  );
  try {
    const got = await downloadVerified(url, tmp, download);
    const unpacked = await unpackArchive(tmp, target, {
      sha256: got.sha256,
      ...(format ? { format } : {}),
      ...(limits ? { limits } : {}),
    });
    return { ...got, ...unpacked };
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}
