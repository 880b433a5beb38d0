// The archive target on a filesystem (AUDIT_ARCHIVE_DIR). Each object is written to a temporary file,
// flushed, made read-only and then linked into place: link() fails when the name exists, so an
// archive is never overwritten, and a reader never sees a half-written file.
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import {
  ArchivedObject,
  ArchiveObjectExistsError,
  ArchiveTarget,
  assertArchiveKey,
} from './archive-target';

export class FilesystemArchiveTarget implements ArchiveTarget {
  constructor(private readonly root: string) {}

  locate(key: string): string {
    assertArchiveKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, data: Buffer): Promise<ArchivedObject> {
    const path = this.locate(key);
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    const file = await open(temp, 'wx', 0o444);
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await link(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ArchiveObjectExistsError(
          `archive object ${key} exists; archives are never overwritten`,
        );
      }
      throw error;
    } finally {
      await unlink(temp);
    }
    // The directory entry too, so the file survives a crash right after we report it stored.
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return {
      key,
      location: path,
      sha256: createHash('sha256').update(data).digest('hex'),
      size: data.length,
    };
  }

  get(key: string): Promise<Buffer> {
    return readFile(this.locate(key));
  }

  async list(prefix = ''): Promise<string[]> {
    const entries = await readdir(this.root, { recursive: true, withFileTypes: true }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [];
        throw error;
      },
    );
    return entries
      .filter((entry) => entry.isFile() && !entry.name.endsWith('.tmp'))
      .map((entry) => relative(this.root, join(entry.parentPath, entry.name)).split(sep).join('/'))
      .filter((key) => key.startsWith(prefix))
      .sort();
  }
}
