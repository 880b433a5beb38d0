// The offline verifier against exports built in memory: it recomputes every leaf and the root,
// names the first altered or missing entry, and checks proofs against signed checkpoints.
import { generateKeyPairSync } from 'node:crypto';
import {
  consistencyProof,
  inclusionProof,
  publicKeyPem,
  signCheckpoint,
  SignedCheckpoint,
  toHex,
} from '@finance/merkle';
import { MemoryLog, ORIGIN, sampleRecord } from '../test-fixtures/memory-log';
import { verifyAudit, wantedFromExport } from './audit-verification';
import { verifyExportText } from './export-verifier';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const sign = (log: MemoryLog, size: number): SignedCheckpoint =>
  signCheckpoint(
    {
      origin: ORIGIN,
      treeSize: size,
      rootHash: toHex(log.root(size)),
      timestamp: '2026-11-22T11:00:00.000Z',
    },
    privateKey,
  );

const log = new MemoryLog(Array.from({ length: 100 }, (_, i) => sampleRecord(i)));
const text = (lines: string[]) => `${lines.join('\n')}\n`;

function check(lines: string[], checkpoint: SignedCheckpoint, previous: SignedCheckpoint[] = []) {
  const input = { checkpoint, previous, publicKey };
  const exported = verifyExportText(text(lines), wantedFromExport(input));
  return verifyAudit({ ...input, export: exported });
}

describe('export verification', () => {
  it('accepts an intact export of the whole log and of any range of it', () => {
    const checkpoint = sign(log, 100);
    const report = check(log.exportLines(), checkpoint);
    expect(report).toMatchObject({ ok: true, firstBadEntry: null });
    expect(report.checks.map((c) => c.message)).toEqual([
      `checkpoint of size 100 (2026-11-22T11:00:00.000Z): signature valid (key ${checkpoint.keyId})`,
      'export of entries [0, 100): 100 entries, each matches its recorded leaf hash',
      'the root of the first 100 entries matches the signed checkpoint',
    ]);
    for (const [from, to] of [
      [0, 1],
      [37, 64],
      [99, 100],
      [50, 50],
    ]) {
      expect(check(log.exportLines(from, to, 100), checkpoint).ok).toBe(true);
    }
  });

  it('names the first entry whose content was changed', () => {
    const lines = log.exportLines();
    lines[1 + 42] = lines[1 + 42].replace('"42.50"', '"4200.50"');
    lines[1 + 77] = lines[1 + 77].replace('"producer":"trading"', '"producer":"risk"');
    const report = check(lines, sign(log, 100));
    expect(report.ok).toBe(false);
    expect(report.firstBadEntry).toBe(42);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.message)).toEqual([
      'entry 42: its content does not match its recorded leaf hash',
      'entry 77: its content does not match its recorded leaf hash',
      expect.stringMatching(
        /^the root of the first 100 entries is [0-9a-f]{64}, the signed checkpoint says/,
      ),
    ]);
  });

  it('names a removed entry, and one cut off at the end', () => {
    const lines = log.exportLines();
    const removed = lines.filter((_, i) => i !== 1 + 13);
    const report = check(removed, sign(log, 100));
    expect(report.firstBadEntry).toBe(13);
    expect(report.checks.find((c) => !c.ok)?.message).toBe('entry 13 is missing');
    const cut = check(lines.slice(0, 1 + 60), sign(log, 100));
    expect(cut.firstBadEntry).toBe(60);
    expect(cut.checks.find((c) => !c.ok)?.message).toBe(
      'the export ends before entry 60 (expected up to 99)',
    );
  });

  it('narrows down hashes rewritten together with the content using older checkpoints', () => {
    // A rewrite that kept every entry consistent with its recorded hash: only roots can tell.
    const records = log.records.map((r, i) => (i === 70 ? { ...r, producer: 'risk' } : r));
    const forged = new MemoryLog(records);
    const report = check(forged.exportLines(), sign(log, 100), [sign(log, 50), sign(log, 80)]);
    expect(report.ok).toBe(false);
    expect(report.firstBadEntry).toBeNull();
    expect(report.firstBadWithin).toEqual([50, 80]);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.message)).toEqual([
      expect.stringMatching(/^the root of the first 80 entries is/),
      expect.stringMatching(/^the root of the first 100 entries is/),
      'every entry matches its recorded leaf hash, so the recorded hashes were rewritten too: the first bad entry is in [50, 80)',
    ]);
  });

  it('refuses a checkpoint signed by another key or altered, and says when the key was not pinned', () => {
    const checkpoint = sign(log, 100);
    const other = generateKeyPairSync('ed25519');
    const exported = verifyExportText(text(log.exportLines()));
    expect(
      verifyAudit({ checkpoint, publicKey: other.publicKey, export: exported }).checks[0],
    ).toMatchObject({
      ok: false,
      message: expect.stringContaining('signature invalid: signed by key'),
    });
    const unpinned = verifyAudit({
      checkpoint: { ...checkpoint, publicKey: publicKeyPem(publicKey) },
      export: exported,
    });
    expect(unpinned.ok).toBe(true);
    expect(unpinned.checks[0]).toMatchObject({
      warning: true,
      message: expect.stringContaining('--public-key'),
    });
    expect(verifyAudit({ checkpoint, export: exported }).ok).toBe(false);
  });

  it('checks inclusion proofs with the leaf recomputed from the entry, never the recorded hash', async () => {
    const checkpoint = sign(log, 100);
    const proof = async (index: number) => ({
      leafIndex: index,
      treeSize: 100,
      leafHash: toHex(log.leaves[index]),
      auditPath: (await inclusionProof(log.source, index, 100)).map(toHex),
      entry: JSON.parse(log.texts[index]) as unknown,
      checkpoint,
    });
    const good = await proof(17);
    expect(verifyAudit({ checkpoint, publicKey, inclusion: [good] }).ok).toBe(true);
    const lying = { ...(await proof(18)), entry: { ...(good.entry as object), type: 'Other' } };
    const report = verifyAudit({ checkpoint, publicKey, inclusion: [lying] });
    expect(report).toMatchObject({ ok: false, firstBadEntry: 18 });
  });

  it('checks consistency between saved checkpoints, and fails after an old entry was removed', async () => {
    const old = sign(log, 60);
    const checkpoint = sign(log, 100);
    const doc = async (source: MemoryLog, size: number, to: SignedCheckpoint) => ({
      fromSize: 60,
      toSize: size,
      proof: (await consistencyProof(source.source, 60, size)).map(toHex),
      from: old,
      to,
    });
    expect(
      verifyAudit({
        checkpoint,
        previous: [old],
        publicKey,
        consistency: [await doc(log, 100, checkpoint)],
      }).ok,
    ).toBe(true);
    // Entry 20 removed and the tree rebuilt and re-signed: internally consistent, but not with
    // the checkpoint of size 60 the auditor kept.
    const rewritten = new MemoryLog([...log.records.filter((_, i) => i !== 20), sampleRecord(100)]);
    const resigned = sign(rewritten, 100);
    const report = verifyAudit({
      checkpoint: resigned,
      previous: [old],
      publicKey,
      consistency: [await doc(rewritten, 100, resigned)],
      export: verifyExportText(text(rewritten.exportLines()), { rootsAt: [60, 100] }),
    });
    expect(report.ok).toBe(false);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.message)).toEqual([
      expect.stringMatching(/^the root of the first 60 entries is/),
      'consistency proof from size 60 to 100 does not verify: the log was rewritten after the checkpoint of size 60 (an entry before 60 was changed or removed)',
      'every entry matches its recorded leaf hash, so the recorded hashes were rewritten too: the first bad entry is in [0, 60)',
    ]);
    // Without an export or a proof, an older checkpoint is not silently taken as checked.
    expect(verifyAudit({ checkpoint, previous: [old], publicKey }).checks.at(-1)?.message).toMatch(
      /^the checkpoint of size 60 was not compared/,
    );
  });

  it('refuses a header that does not describe the lines', () => {
    const lines = log.exportLines(10, 20, 100);
    const header = JSON.parse(lines[0]) as { left: string[] };
    header.left.pop();
    expect(() => verifyExportText(text([JSON.stringify(header), ...lines.slice(1)]))).toThrow(
      'the export header has 1 left and 5 right hashes; [10, 20) of 100 needs 2 and 5',
    );
    expect(() => verifyExportText('')).toThrow('the export is empty: no header line');
  });
});
