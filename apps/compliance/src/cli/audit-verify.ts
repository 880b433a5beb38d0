// Offline verification of the audit log, for auditors: no database, no service, no trust in either.
// Recomputes every leaf hash and the root of an export and checks them against a signed checkpoint,
// checks saved proofs, and names the first altered or missing entry. Exit 0 verified, 1 not, 2 usage.
//
//   npm run audit-verify -- <export.jsonl> --checkpoint <cp.json> [--public-key <pem>]
//       [--previous <older-cp.json>]... [--consistency <proof.json>]... [--inclusion <proof.json>]...
import {
  checkpointDocumentSchema,
  consistencyProofDocumentSchema,
  inclusionProofDocumentSchema,
  SavedCheckpoint,
  verifyAudit,
  verifyExportFile,
  wantedFromExport,
} from '@finance/audit-log';
import { publicKeyFromPem } from '@finance/merkle';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

const USAGE = `usage: npm run audit-verify -- [<export.jsonl>] --checkpoint <cp.json> [--public-key <key.pem>]
         [--previous <older-cp.json>]... [--consistency <proof.json>]... [--inclusion <proof.json>]...

  <export.jsonl>    GET /compliance/audit/entries?checkpoint=<size> (or any range of it)
  --checkpoint      GET /compliance/audit/checkpoints/latest (or /checkpoints/<size>), saved as JSON
  --public-key      the log's Ed25519 public key (PEM) you trust: GET /compliance/audit/public-key
  --previous        a checkpoint you saved earlier; compared with the export or a consistency proof
  --consistency     GET /compliance/audit/proof/consistency?from=<older size>&to=<size>
  --inclusion       GET /compliance/audit/proof/inclusion?entry=<index>&checkpoint=<size>`;

class UsageError extends Error {}

interface Arguments {
  exportFile?: string;
  checkpoint?: string;
  publicKey?: string;
  previous: string[];
  consistency: string[];
  inclusion: string[];
}

function parseArguments(argv: readonly string[]): Arguments {
  const args: Arguments = { previous: [], consistency: [], inclusion: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${arg} needs a file`);
      return next;
    };
    switch (arg) {
      case '--checkpoint':
        args.checkpoint = value();
        break;
      case '--public-key':
        args.publicKey = value();
        break;
      case '--previous':
        args.previous.push(value());
        break;
      case '--consistency':
        args.consistency.push(value());
        break;
      case '--inclusion':
        args.inclusion.push(value());
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        if (args.exportFile)
          throw new UsageError(`one export at a time (got ${args.exportFile} and ${arg})`);
        args.exportFile = arg;
    }
  }
  if (!args.checkpoint) throw new UsageError('--checkpoint is required');
  return args;
}

async function readJson<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`${what} ${file} is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new UsageError(`${what} ${file} is not a ${what}: ${where.join('; ')}`);
  }
  return parsed.data;
}

/** Runs the verification and writes its report; returns the exit code. */
export async function auditVerify(
  argv: readonly string[],
  out: (line: string) => void,
): Promise<number> {
  try {
    const args = parseArguments(argv);
    const checkpoint: SavedCheckpoint = await readJson(
      args.checkpoint!,
      checkpointDocumentSchema,
      'checkpoint',
    );
    const previous: SavedCheckpoint[] = await Promise.all(
      args.previous.map((file) => readJson(file, checkpointDocumentSchema, 'checkpoint')),
    );
    const consistency = await Promise.all(
      args.consistency.map((file) =>
        readJson(file, consistencyProofDocumentSchema, 'consistency proof'),
      ),
    );
    const inclusion = await Promise.all(
      args.inclusion.map((file) => readJson(file, inclusionProofDocumentSchema, 'inclusion proof')),
    );
    let publicKey = null;
    if (args.publicKey) {
      try {
        publicKey = publicKeyFromPem(await readFile(args.publicKey, 'utf8'));
      } catch (error) {
        throw new UsageError(
          `--public-key ${args.publicKey}: ${(error as Error).message.split('\n')[0]}`,
        );
      }
    }
    const request = { checkpoint, previous, publicKey, consistency, inclusion };
    let exported = null;
    if (args.exportFile) {
      try {
        exported = await verifyExportFile(args.exportFile, wantedFromExport(request));
      } catch (error) {
        out(`✗ ${args.exportFile}: ${(error as Error).message}`);
        return 1;
      }
    }
    const report = verifyAudit({ ...request, export: exported });
    for (const check of report.checks)
      out(`${check.ok ? (check.warning ? '!' : '✓') : '✗'} ${check.message}`);
    if (report.ok) {
      out(`VERIFIED: the log of ${checkpoint.treeSize} entries matches the signed checkpoint`);
      return 0;
    }
    if (report.firstBadEntry !== null)
      out(`TAMPERED: the first bad entry is ${report.firstBadEntry}`);
    else if (report.firstBadWithin) {
      out(
        `TAMPERED: the first bad entry is in [${report.firstBadWithin[0]}, ${report.firstBadWithin[1]})`,
      );
    } else out('NOT VERIFIED');
    return 1;
  } catch (error) {
    if (error instanceof UsageError) {
      if (error.message) out(error.message);
      out(USAGE);
      return 2;
    }
    throw error;
  }
}

if (require.main === module) {
  auditVerify(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `audit-verify failed: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      process.exit(2);
    },
  );
}
