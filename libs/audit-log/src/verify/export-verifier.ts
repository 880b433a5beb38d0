// Checks an export offline: every entry's bytes against its recorded leaf hash, entries in order
// with none missing, and the root they give (with the header's hashes for the rest of the tree).
// It reads bytes rather than parsed JSON, so a million entries take seconds.
import { CompactRange, decomposeRange, parseHash } from '@finance/merkle';
import { createReadStream } from 'node:fs';
import { hash } from 'node:crypto';
import { ArchivedRange, ExportHeader, exportHeaderSchema } from '../export-format';

export interface EntryProblem {
  readonly index: number;
  readonly problem: string;
}

export interface ExportVerification {
  readonly header: ExportHeader;
  /** Entry lines read. */
  readonly entries: number;
  /** The first problems, in file order (at most MAX_LISTED_PROBLEMS). */
  readonly problems: readonly EntryProblem[];
  readonly problemCount: number;
  /** The lowest leaf index that is altered, missing or out of place; null when there is none. */
  readonly firstBad: EntryProblem | null;
  /** MTH of `header.treeSize` from the recomputed leaves; null when entries are missing. */
  readonly root: Uint8Array | null;
  /** Roots at requested sizes within [from, to], from the recomputed leaves. */
  readonly rootsAt: ReadonlyMap<number, Uint8Array>;
  /** Recomputed leaf hashes at requested indexes. */
  readonly leafHashes: ReadonlyMap<number, Uint8Array>;
  /** Archived ranges the header declared and that stood in for missing entries. */
  readonly archived: readonly ArchivedRange[];
}

export const MAX_LISTED_PROBLEMS = 20;

const INDEX_PREFIX = Buffer.from('{"index":');
const HASH_PREFIX = Buffer.from(',"leafHash":"');
const ENTRY_PREFIX = Buffer.from('","entry":');
const CLOSE = 0x7d; // }
const CR = 0x0d;

function startsAt(line: Buffer, prefix: Buffer, at: number): boolean {
  return (
    line.length >= at + prefix.length &&
    line.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0
  );
}

const HEX = Buffer.from('0123456789abcdef');

// Compares a digest with its lower-case hex spelling inside the line, without allocating.
function matchesHex(digest: Buffer, line: Buffer, at: number): boolean {
  for (let i = 0; i < digest.length; i++) {
    const byte = digest[i];
    if (line[at + 2 * i] !== HEX[byte >> 4] || line[at + 2 * i + 1] !== HEX[byte & 0x0f]) {
      return false;
    }
  }
  return true;
}

export class ExportVerifier {
  private header?: ExportHeader;
  private range = new CompactRange();
  private expected = 0;
  private complete = true;
  private count = 0;
  private readonly problems: EntryProblem[] = [];
  private problemCount = 0;
  private firstBad: EntryProblem | null = null;
  private readonly rootsAt = new Map<number, Uint8Array>();
  private readonly leafHashes = new Map<number, Uint8Array>();
  private readonly wantedRoots: Set<number>;
  private readonly wantedLeaves: Set<number>;
  private readonly archived: ArchivedRange[] = [];

  constructor(wanted: { rootsAt?: Iterable<number>; leavesAt?: Iterable<number> } = {}) {
    this.wantedRoots = new Set(wanted.rootsAt ?? []);
    this.wantedLeaves = new Set(wanted.leavesAt ?? []);
  }

  /** One line of the file, without its line break. The buffer may be modified while hashing. */
  line(line: Buffer): void {
    if (line.length === 0) return;
    if (!this.header) this.readHeader(line);
    else this.readEntry(line);
  }

  finish(): ExportVerification {
    const header = this.header;
    if (!header) throw new Error('the export is empty: no header line');
    this.skipArchived(header.to);
    if (this.expected < header.to) {
      this.report(
        this.expected,
        `the export ends before entry ${this.expected} (expected up to ${header.to - 1})`,
      );
      this.complete = false;
    }
    let root: Uint8Array | null = null;
    if (this.complete) {
      const ids = decomposeRange(header.to, header.treeSize);
      header.right.forEach((hex, i) => this.range.appendNode(ids[i].level, parseHash(hex)));
      root = this.range.root();
      this.rootsAt.set(header.treeSize, root);
    }
    return {
      header,
      entries: this.count,
      problems: this.problems,
      problemCount: this.problemCount,
      firstBad: this.firstBad,
      root,
      rootsAt: this.rootsAt,
      leafHashes: this.leafHashes,
      archived: this.archived,
    };
  }

  // Entries missing because retention archived them: their subtree hashes from the header stand in
  // for them, so the root still comes out (their content is checked against the archive's file).
  private skipArchived(upTo: number): void {
    for (const range of this.header?.archived ?? []) {
      if (range.from !== this.expected || range.to > upTo) continue;
      const ids = decomposeRange(range.from, range.to);
      if (ids.length !== range.hashes.length) {
        this.report(
          range.from,
          `archived range [${range.from}, ${range.to}) has ${range.hashes.length} hashes, needs ${ids.length}`,
        );
        this.complete = false;
        return;
      }
      if (this.complete)
        range.hashes.forEach((hex, i) => this.range.appendNode(ids[i].level, parseHash(hex)));
      if (this.complete && this.wantedRoots.has(range.to))
        this.rootsAt.set(range.to, this.range.root());
      this.archived.push(range);
      this.expected = range.to;
    }
  }

  private readHeader(line: Buffer): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString('utf8'));
    } catch {
      throw new Error('the first line is not an export header (not JSON)');
    }
    const result = exportHeaderSchema.safeParse(parsed);
    if (!result.success) {
      throw new Error(
        `the export header is invalid: ${result.error.issues.map((i) => `${i.path.join('.') || '(header)'}: ${i.message}`).join('; ')}`,
      );
    }
    const header = result.data;
    const left = decomposeRange(0, header.from);
    const right = decomposeRange(header.to, header.treeSize);
    if (header.left.length !== left.length || header.right.length !== right.length) {
      throw new Error(
        `the export header has ${header.left.length} left and ${header.right.length} right hashes; ` +
          `[${header.from}, ${header.to}) of ${header.treeSize} needs ${left.length} and ${right.length}`,
      );
    }
    header.left.forEach((hex, i) => this.range.appendNode(left[i].level, parseHash(hex)));
    this.header = header;
    this.expected = header.from;
    if (this.wantedRoots.has(header.from)) this.rootsAt.set(header.from, this.range.root());
  }

  private readEntry(line: Buffer): void {
    const header = this.header!;
    let end = line.length;
    if (line[end - 1] === CR) end -= 1;
    let at = INDEX_PREFIX.length;
    let index = 0;
    let digits = 0;
    if (startsAt(line, INDEX_PREFIX, 0)) {
      while (at < end && line[at] >= 0x30 && line[at] <= 0x39 && digits < 16) {
        index = index * 10 + (line[at] - 0x30);
        at += 1;
        digits += 1;
      }
    }
    const hashAt = at + HASH_PREFIX.length;
    const entryAt = hashAt + 64 + ENTRY_PREFIX.length;
    if (
      digits === 0 ||
      !startsAt(line, HASH_PREFIX, at) ||
      !startsAt(line, ENTRY_PREFIX, hashAt + 64) ||
      end <= entryAt ||
      line[end - 1] !== CLOSE
    ) {
      this.report(this.expected, `entry ${this.expected}: unreadable line`);
      this.complete = false;
      this.expected += 1;
      return;
    }
    if (index < this.expected || index >= header.to) {
      this.report(index, `entry ${index} is out of place (after entry ${this.expected - 1})`);
      this.complete = false;
      return;
    }
    if (index > this.expected) this.skipArchived(index);
    if (index < this.expected) {
      this.report(index, `entry ${index} is in a range the header says was archived`);
      this.complete = false;
      return;
    }
    if (index > this.expected) {
      const missing =
        index - this.expected === 1
          ? `entry ${this.expected} is`
          : `entries ${this.expected} to ${index - 1} are`;
      this.report(this.expected, `${missing} missing`);
      this.complete = false;
    }
    // H(0x00 ‖ entry) without copying: the byte before the entry is the ':' of "entry":.
    const prefixAt = entryAt - 1;
    const saved = line[prefixAt];
    line[prefixAt] = 0x00;
    const leaf = hash('sha256', line.subarray(prefixAt, end - 1), 'buffer');
    line[prefixAt] = saved;
    if (!matchesHex(leaf, line, hashAt)) {
      this.report(index, `entry ${index}: its content does not match its recorded leaf hash`);
    }
    if (this.complete) {
      this.range.appendLeaf(leaf);
      if (this.wantedRoots.has(index + 1)) this.rootsAt.set(index + 1, this.range.root());
    }
    if (this.wantedLeaves.has(index)) this.leafHashes.set(index, leaf);
    this.expected = index + 1;
    this.count += 1;
  }

  private report(index: number, problem: string): void {
    const entry = { index, problem };
    this.problemCount += 1;
    if (this.problems.length < MAX_LISTED_PROBLEMS) this.problems.push(entry);
    if (!this.firstBad || index < this.firstBad.index) this.firstBad = entry;
  }
}

/**
 * Feeds byte chunks to a verifier, splitting lines across chunk boundaries. Lines are views into
 * the chunks (which the verifier briefly writes into), so chunks must not be shared.
 */
export class LineSplitter {
  private rest: Buffer | null = null;

  constructor(private readonly onLine: (line: Buffer) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      this.onLine(this.rest ? Buffer.concat([this.rest, piece]) : piece);
      this.rest = null;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const tail = chunk.subarray(start);
      // Copied: it outlives this chunk.
      this.rest = this.rest ? Buffer.concat([this.rest, tail]) : Buffer.from(tail);
    }
  }

  end(): void {
    if (this.rest) this.onLine(this.rest);
    this.rest = null;
  }
}

export async function verifyExportFile(
  path: string,
  wanted: { rootsAt?: Iterable<number>; leavesAt?: Iterable<number> } = {},
): Promise<ExportVerification> {
  const verifier = new ExportVerifier(wanted);
  const splitter = new LineSplitter((line) => verifier.line(line));
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    splitter.push(chunk as Buffer);
  }
  splitter.end();
  return verifier.finish();
}

export function verifyExportText(
  text: string,
  wanted: { rootsAt?: Iterable<number>; leavesAt?: Iterable<number> } = {},
): ExportVerification {
  const verifier = new ExportVerifier(wanted);
  const splitter = new LineSplitter((line) => verifier.line(line));
  splitter.push(Buffer.from(text, 'utf8'));
  splitter.end();
  return verifier.finish();
}

/** The bytes of an export as read back from an archive (copied: the verifier writes into lines). */
export function verifyExportBytes(
  bytes: Buffer,
  wanted: { rootsAt?: Iterable<number>; leavesAt?: Iterable<number> } = {},
): ExportVerification {
  const verifier = new ExportVerifier(wanted);
  const splitter = new LineSplitter((line) => verifier.line(line));
  splitter.push(Buffer.from(bytes));
  splitter.end();
  return verifier.finish();
}
