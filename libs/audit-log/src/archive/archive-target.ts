// Where retention puts a month's export before the month is dropped. The interface is all retention
// sees: the filesystem target here, and in production an S3 bucket with Object Lock in compliance
// mode (objects that nobody, the root account included, can overwrite or delete before their
// retention date) behind the same three calls.
export interface ArchivedObject {
  /** The key, as `get` takes it back. */
  readonly key: string;
  /** Where it lies, for people: a path or an s3:// URI. */
  readonly location: string;
  /** SHA-256 of the bytes written, hex. */
  readonly sha256: string;
  readonly size: number;
}

export interface ArchiveTarget {
  /** Stores the bytes under a new key; refuses a key that exists (archives are immutable). */
  put(key: string, data: Buffer): Promise<ArchivedObject>;
  /** The bytes as stored now (which retention checks against what it wrote). */
  get(key: string): Promise<Buffer>;
  /** Keys under a prefix, sorted. */
  list(prefix?: string): Promise<string[]>;
  /** A person-readable location of a key. */
  locate(key: string): string;
}

export class ArchiveObjectExistsError extends Error {
  override readonly name = 'ArchiveObjectExistsError';
}

/** Keys are relative paths of safe segments: no "..", no absolute paths, nothing to escape with. */
export const ARCHIVE_KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function assertArchiveKey(key: string): void {
  if (!ARCHIVE_KEY.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
    throw new RangeError(`archive key '${key}' is not a relative path of safe segments`);
  }
}
