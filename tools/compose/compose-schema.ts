// Obtains the Compose specification's JSON schema, pinned and checksummed, into the tools cache.
//
// Source: the schema file that ships inside the Go module github.com/compose-spec/compose-go/v2,
// which is the library Docker Compose itself validates with. The Go module proxy serves module
// versions immutably and `go mod download` checks them against the Go checksum database, so a
// fresh CI machine gets exactly these bytes; the SHA-256 pin below guards every path, including
// the cached copy. The schema is never committed to this repository.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

export const COMPOSE_GO_MODULE = 'github.com/compose-spec/compose-go/v2';
export const COMPOSE_GO_VERSION = 'v2.16.2';
// sha256 of schema/compose-spec.json in that module version (draft 2020-12 schema).
export const COMPOSE_SCHEMA_SHA256 =
  'f266dcbb043229405d7cedd5aec918f9102c2b3d5e3850808fdd8edd564a43ff';

const SCHEMA_IN_MODULE = 'schema/compose-spec.json';
const DEFAULT_GOPROXY = 'https://proxy.golang.org';

/** Where downloaded tools live: $FINANCE_TOOLS_CACHE or ~/.cache/finance-core (cached by CI). */
export function toolsCacheDir(): string {
  const fromEnv = process.env.FINANCE_TOOLS_CACHE;
  return fromEnv && fromEnv.trim() !== '' ? fromEnv : join(homedir(), '.cache', 'finance-core');
}

export function composeSchemaCachePath(): string {
  return join(toolsCacheDir(), `compose-spec-${COMPOSE_GO_VERSION}`, 'compose-spec.json');
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function assertPinned(bytes: Buffer, origin: string): void {
  const actual = sha256(bytes);
  if (actual !== COMPOSE_SCHEMA_SHA256) {
    throw new Error(
      `compose schema from ${origin} has sha256 ${actual}, expected ${COMPOSE_SCHEMA_SHA256} ` +
        `(${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION})`,
    );
  }
}

/** Primary route: the Go toolchain (present in CI via setup-go), which verifies against sum.golang.org. */
function downloadWithGo(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      'go',
      ['mod', 'download', '-json', `${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION}`],
      // Outside any go.mod / go.work so nothing in the caller's tree changes the resolution.
      { cwd: tmpdir(), env: { ...process.env, GOWORK: 'off' }, timeout: 300_000 },
      (error, stdout, stderr) => {
        let info: { Dir?: string; Error?: string } = {};
        try {
          info = JSON.parse(stdout) as typeof info;
        } catch {
          // go printed nothing parseable; the error below carries stderr.
        }
        if (error || info.Error || !info.Dir) {
          reject(
            new Error(`go mod download failed: ${info.Error ?? (stderr.trim() || String(error))}`),
          );
          return;
        }
        readFile(join(info.Dir, SCHEMA_IN_MODULE)).then(resolve, reject);
      },
    );
  });
}

// The proxy protocol spells upper-case letters as "!" + lower-case.
function escapeModulePath(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

function firstHttpProxy(): string {
  const list = (process.env.GOPROXY ?? '').split(/[,|]/).map((p) => p.trim());
  return list.find((p) => /^https?:\/\//.test(p))?.replace(/\/+$/, '') ?? DEFAULT_GOPROXY;
}

/** Reads one member of a module zip (small, never zip64) without any dependency. */
export function extractZipEntry(zip: Buffer, name: string): Buffer {
  const EOCD = 0x06054b50;
  const CENTRAL = 0x02014b50;
  const LOCAL = 0x04034b50;
  let eocd = -1;
  // The end record sits in the last 22 bytes plus an optional comment of up to 64 KiB.
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(at) !== CENTRAL) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localOffset = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (entryName === name) {
      if (zip.readUInt32LE(localOffset) !== LOCAL)
        throw new Error(`corrupt zip local header for ${name}`);
      const start =
        localOffset + 30 + zip.readUInt16LE(localOffset + 26) + zip.readUInt16LE(localOffset + 28);
      const data = zip.subarray(start, start + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`unsupported zip compression method ${method} for ${name}`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`${name} not found in zip`);
}

/** Fallback for machines without Go: the same module zip straight from the module proxy. */
async function downloadFromProxy(): Promise<Buffer> {
  const url = `${firstHttpProxy()}/${escapeModulePath(COMPOSE_GO_MODULE)}/@v/${COMPOSE_GO_VERSION}.zip`;
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const zip = Buffer.from(await response.arrayBuffer());
  return extractZipEntry(zip, `${COMPOSE_GO_MODULE}@${COMPOSE_GO_VERSION}/${SCHEMA_IN_MODULE}`);
}

async function readCached(path: string): Promise<Buffer | undefined> {
  try {
    const bytes = await readFile(path);
    // A truncated or edited cache entry is re-fetched rather than trusted.
    return sha256(bytes) === COMPOSE_SCHEMA_SHA256 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** The pinned Compose spec schema as a JSON object, downloading it into the cache on first use. */
export async function loadComposeSchema(): Promise<object> {
  const cachePath = composeSchemaCachePath();
  let bytes = await readCached(cachePath);
  if (!bytes) {
    const failures: string[] = [];
    for (const [origin, fetchSchema] of [
      ['go mod download', downloadWithGo],
      ['module proxy', downloadFromProxy],
    ] as const) {
      try {
        const candidate = await fetchSchema();
        assertPinned(candidate, origin);
        bytes = candidate;
        break;
      } catch (error: unknown) {
        failures.push(`${origin}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (!bytes)
      throw new Error(`cannot obtain the compose spec schema:\n  ${failures.join('\n  ')}`);
    await mkdir(dirname(cachePath), { recursive: true });
    // Write then rename so a parallel or interrupted run never leaves half a file behind.
    const partial = `${cachePath}.${process.pid}.partial`;
    await writeFile(partial, bytes);
    await rename(partial, cachePath);
  }
  return JSON.parse(bytes.toString('utf8')) as object;
}
