// The export of a range of the log as JSON lines: a header with the hashes that stand for the
// entries outside the range, then one line per entry holding the exact bytes its leaf hash covers.
// With a signed checkpoint, the range can be checked offline without the rest of the log.
import { z } from 'zod';

export const EXPORT_FORMAT = 'finance-audit-export/v1';

export interface ExportHeader {
  readonly format: typeof EXPORT_FORMAT;
  readonly origin: string;
  /** Entries [from, to) follow, one per line, in leaf order. */
  readonly from: number;
  readonly to: number;
  /** The tree the header's hashes belong to (a signed checkpoint's size, to check against). */
  readonly treeSize: number;
  /** Hashes of the complete subtrees covering [0, from), left to right (`decomposeRange`). */
  readonly left: readonly string[];
  /** Hashes of the complete subtrees covering [to, treeSize), left to right. */
  readonly right: readonly string[];
  /**
   * Ranges within [from, to) whose entries retention has archived and dropped (left out when there
   * are none, so such exports read as before). Each stands in the tree by the hashes of the complete
   * subtrees covering it (`decomposeRange`); its entries are checked against the archive's file.
   */
  readonly archived?: readonly ArchivedRange[];
}

export interface ArchivedRange {
  readonly from: number;
  readonly to: number;
  readonly hashes: readonly string[];
  /** Where the archive lies (the archive target's key), for the auditor to fetch it. */
  readonly location: string;
}

const hashHex = z.string().regex(/^[0-9a-f]{64}$/);
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const exportHeaderSchema = z
  .strictObject({
    format: z.literal(EXPORT_FORMAT),
    origin: z.string().min(1),
    from: size,
    to: size,
    treeSize: size,
    left: z.array(hashHex),
    right: z.array(hashHex),
    archived: z
      .array(
        z.strictObject({
          from: size,
          to: size,
          hashes: z.array(hashHex),
          location: z.string().min(1),
        }),
      )
      .optional(),
  })
  .refine((h) => h.from <= h.to && h.to <= h.treeSize, 'needs from <= to <= treeSize')
  .refine(
    (h) =>
      (h.archived ?? []).every(
        (a, i, all) =>
          h.from <= a.from && a.from < a.to && a.to <= h.to && (i === 0 || all[i - 1].to <= a.from),
      ),
    { path: ['archived'], message: 'needs ordered, disjoint ranges within [from, to)' },
  );

export function headerLine(header: ExportHeader): string {
  return JSON.stringify(header);
}

/**
 * `{"index":…,"leafHash":"…","entry":…}` with the entry's bytes verbatim: the verifier takes them
 * from after `"entry":` to the closing brace without re-serialising anything.
 */
export function entryLine(index: number, leafHashHex: string, leafText: string): string {
  // A raw line break inside stored text would split the line; escaping it changes the bytes, so
  // the entry then fails its hash check instead of breaking the file.
  const entry = /[\r\n]/.test(leafText)
    ? leafText.replace(/\r/g, '\\r').replace(/\n/g, '\\n')
    : leafText;
  return `{"index":${index},"leafHash":"${leafHashHex}","entry":${entry}}`;
}
