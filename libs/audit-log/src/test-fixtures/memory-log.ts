// An audit log held in memory, built with the same record format and export lines as the store:
// for tests of the verifier that need no database.
import { uuidv7 } from '@finance/contracts';
import {
  canonicalJson,
  decomposeRange,
  leafHash,
  NodeSource,
  rootOfLeafHashes,
  toHex,
} from '@finance/merkle';
import { entryLine, EXPORT_FORMAT, headerLine } from '../export-format';
import { AuditRecord, recordLeafText } from '../record';

export const ORIGIN = 'test/audit';

export function sampleRecord(i: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    source: `t.trading.events/${i % 10}/${i}`,
    eventId: uuidv7(),
    type: 'OrderCreated',
    producer: 'trading',
    aggregateId: `order-${i}`,
    correlationId: `corr-${i}`,
    traceId: i % 2 === 0 ? '4bf92f3577b34da6a3ce929d0e0e4736' : null,
    occurredAt: '2026-11-22T10:00:00.123456Z',
    appendedAt: '2026-11-22T10:00:01.000001Z',
    payload: { type: 'OrderCreated', data: { amount: { amount: `${i}.50`, currency: 'USD' } } },
    ...overrides,
  };
}

export class MemoryLog {
  readonly texts: string[];
  readonly leaves: Uint8Array[];

  constructor(readonly records: readonly AuditRecord[]) {
    this.texts = records.map(({ payload, ...rest }) =>
      recordLeafText(rest, canonicalJson(payload)),
    );
    this.leaves = this.texts.map((text) => leafHash(Buffer.from(text)));
  }

  readonly source: NodeSource = {
    nodes: async (ids) => ids.map((id) => this.subtree(id.level, id.index)),
  };

  subtree(level: number, index: number): Uint8Array {
    return rootOfLeafHashes(this.leaves.slice(index * 2 ** level, (index + 1) * 2 ** level));
  }

  root(size = this.leaves.length): Uint8Array {
    return rootOfLeafHashes(this.leaves.slice(0, size));
  }

  /** The export of [from, to) for the tree of `treeSize`, lines as the store writes them. */
  exportLines(from = 0, to = this.leaves.length, treeSize = to): string[] {
    const hashes = (begin: number, end: number) =>
      decomposeRange(begin, end).map((id) => toHex(this.subtree(id.level, id.index)));
    const header = headerLine({
      format: EXPORT_FORMAT,
      origin: ORIGIN,
      from,
      to,
      treeSize,
      left: hashes(0, from),
      right: hashes(to, treeSize),
    });
    const lines = [header];
    for (let i = from; i < to; i++) lines.push(entryLine(i, toHex(this.leaves[i]), this.texts[i]));
    return lines;
  }
}
