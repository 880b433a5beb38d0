// The double-entry ledger: accounts per (kind, party, asset) and immutable transfers between two of
// them. Every call runs in the caller's transaction, and a batch of transfers is linked: it takes
// effect completely or, when any transfer in it fails, not at all (the error aborts the caller's
// transaction). Transfers are idempotent by id: the same transfer again changes nothing, the same id
// with different fields is refused. Balances that must not go short are guarded by a CHECK in
// PostgreSQL, so no code path can overdraw a client's cash or shares.
import type { EntityManager } from 'typeorm';

export type AssetKind = 'CASH' | 'SECURITY';
export type LedgerAccountKind = 'CLIENT' | 'CCP' | 'FEES' | 'EXTERNAL';

export interface LedgerAccountRef {
  readonly kind: LedgerAccountKind;
  /** The trading account id for CLIENT; a fixed name for the others (ccp, fees, bank, custody). */
  readonly party: string;
  readonly asset: string;
  readonly assetKind: AssetKind;
}

export const CCP_PARTY = 'ccp';
export const FEES_PARTY = 'fees';
/** Where client cash comes from and goes to (the bank), and shares (the custodian). */
export const BANK_PARTY = 'bank';
export const CUSTODY_PARTY = 'custody';

export function clientAccount(
  party: string,
  asset: string,
  assetKind: AssetKind,
): LedgerAccountRef {
  return { kind: 'CLIENT', party, asset, assetKind };
}

export function ccpAccount(asset: string, assetKind: AssetKind): LedgerAccountRef {
  return { kind: 'CCP', party: CCP_PARTY, asset, assetKind };
}

export function feesAccount(currency: string): LedgerAccountRef {
  return { kind: 'FEES', party: FEES_PARTY, asset: currency, assetKind: 'CASH' };
}

export function externalAccount(asset: string, assetKind: AssetKind): LedgerAccountRef {
  return {
    kind: 'EXTERNAL',
    party: assetKind === 'CASH' ? BANK_PARTY : CUSTODY_PARTY,
    asset,
    assetKind,
  };
}

/** Clients and the fee income can never be short; the CCP and the outside world can. */
function mayNotGoShort(kind: LedgerAccountKind): boolean {
  return kind === 'CLIENT' || kind === 'FEES';
}

export interface NewTransfer {
  readonly id: string;
  readonly debit: LedgerAccountRef;
  readonly credit: LedgerAccountRef;
  readonly amount: bigint;
  /** PENDING holds the amount on both accounts until a POST_PENDING or VOID_PENDING closes it. */
  readonly kind?: 'POSTED' | 'PENDING';
  readonly code: string;
  readonly reference?: string;
}

export type LedgerErrorCode =
  | 'EXCEEDS_CREDITS'
  | 'EXISTS_WITH_DIFFERENT_FIELDS'
  | 'PENDING_NOT_FOUND'
  | 'PENDING_ALREADY_CLOSED'
  | 'TRANSFER_NOT_FOUND'
  | 'ALREADY_REVERSED'
  | 'INVALID_TRANSFER';

export class LedgerError extends Error {
  override readonly name = 'LedgerError';
  constructor(
    readonly code: LedgerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface TransferOutcome {
  readonly id: string;
  /** false: a transfer with this id and these fields was already there; nothing changed. */
  readonly created: boolean;
}

interface TransferRow {
  transfer_id: string;
  debit_account_id: string;
  credit_account_id: string;
  asset: string;
  amount: string;
  kind: string;
  pending_id: string | null;
  reverses_id: string | null;
  code: string;
}

const keyOf = (a: LedgerAccountRef) =>
  `${a.kind}\u0000${a.party}\u0000${a.assetKind}\u0000${a.asset}`;

/** Ids of the accounts, created (empty) where missing. */
export async function ensureAccounts(
  manager: EntityManager,
  accounts: readonly LedgerAccountRef[],
): Promise<Map<string, string>> {
  const unique = new Map(accounts.map((a) => [keyOf(a), a]));
  const list = [...unique.values()];
  if (list.length === 0) return new Map();
  const rows: Array<{
    ledger_account_id: string;
    kind: string;
    party: string;
    asset: string;
    asset_kind: string;
  }> = await manager.query(
    `WITH wanted AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[])
                AS w(kind, party, asset, asset_kind, guarded)),
       created AS (
         INSERT INTO ledger_accounts (kind, party, asset, asset_kind, debits_must_not_exceed_credits)
         SELECT kind, party, asset, asset_kind, guarded FROM wanted
         ON CONFLICT (kind, party, asset_kind, asset) DO NOTHING
         RETURNING ledger_account_id, kind, party, asset, asset_kind)
       SELECT ledger_account_id, kind, party, asset, asset_kind FROM created
       UNION ALL
       SELECT a.ledger_account_id, a.kind, a.party, a.asset, a.asset_kind
         FROM ledger_accounts a JOIN wanted w USING (kind, party, asset_kind, asset)`,
    [
      list.map((a) => a.kind),
      list.map((a) => a.party),
      list.map((a) => a.asset),
      list.map((a) => a.assetKind),
      list.map((a) => mayNotGoShort(a.kind)),
    ],
  );
  if (rows.length < list.length) {
    // Created by a concurrent transaction that committed after this statement's snapshot: a new
    // statement sees it.
    rows.push(
      ...(await manager.query(
        `SELECT a.ledger_account_id, a.kind, a.party, a.asset, a.asset_kind
           FROM ledger_accounts a
           JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS w(kind, party, asset, asset_kind)
             USING (kind, party, asset_kind, asset)`,
        [
          list.map((a) => a.kind),
          list.map((a) => a.party),
          list.map((a) => a.asset),
          list.map((a) => a.assetKind),
        ],
      )),
    );
  }
  return new Map(
    rows.map((r) => [
      keyOf({
        kind: r.kind as LedgerAccountKind,
        party: r.party,
        asset: r.asset,
        assetKind: r.asset_kind as AssetKind,
      }),
      String(r.ledger_account_id),
    ]),
  );
}

/**
 * Creates linked POSTED or PENDING transfers. Throws LedgerError (and the caller's transaction must
 * then roll back) if any of them cannot be made; transfers already made with the same fields are
 * reported as not created and change nothing.
 */
export async function createTransfers(
  manager: EntityManager,
  transfers: readonly NewTransfer[],
): Promise<TransferOutcome[]> {
  if (transfers.length === 0) return [];
  for (const t of transfers) {
    if (t.amount <= 0n) throw new LedgerError('INVALID_TRANSFER', `${t.id}: amount must be > 0`);
    if (t.debit.asset !== t.credit.asset || t.debit.assetKind !== t.credit.assetKind) {
      throw new LedgerError('INVALID_TRANSFER', `${t.id}: both accounts must hold the same asset`);
    }
    if (keyOf(t.debit) === keyOf(t.credit)) {
      throw new LedgerError('INVALID_TRANSFER', `${t.id}: debit and credit are the same account`);
    }
  }
  if (new Set(transfers.map((t) => t.id)).size !== transfers.length) {
    throw new LedgerError('INVALID_TRANSFER', 'a batch names the same transfer id twice');
  }
  const ids = await ensureAccounts(
    manager,
    transfers.flatMap((t) => [t.debit, t.credit]),
  );
  const rows = transfers.map((t) => ({
    id: t.id,
    debit: ids.get(keyOf(t.debit))!,
    credit: ids.get(keyOf(t.credit))!,
    asset: t.debit.asset,
    amount: t.amount.toString(),
    kind: t.kind ?? 'POSTED',
    code: t.code,
    reference: t.reference ?? null,
  }));
  return insertAndApply(manager, rows);
}

/** Closes pending transfers: POST moves their amounts to posted, VOID gives them back. */
export async function closePending(
  manager: EntityManager,
  closes: ReadonlyArray<{ id: string; pendingId: string; action: 'POST' | 'VOID'; code: string }>,
): Promise<TransferOutcome[]> {
  if (closes.length === 0) return [];
  const pending: TransferRow[] = await manager.query(
    `SELECT * FROM ledger_transfers WHERE transfer_id = ANY($1)`,
    [closes.map((c) => c.pendingId)],
  );
  const byId = new Map(pending.map((p) => [p.transfer_id, p]));
  const rows = closes.map((c) => {
    const p = byId.get(c.pendingId);
    if (!p || p.kind !== 'PENDING') {
      throw new LedgerError('PENDING_NOT_FOUND', `${c.pendingId} is not a pending transfer`);
    }
    return {
      id: c.id,
      debit: String(p.debit_account_id),
      credit: String(p.credit_account_id),
      asset: p.asset,
      amount: String(p.amount),
      kind: c.action === 'POST' ? 'POST_PENDING' : 'VOID_PENDING',
      code: c.code,
      reference: null,
      pendingId: c.pendingId,
    };
  });
  return insertAndApply(manager, rows);
}

/** A correcting transfer: the same amount between the same accounts, the other way round. */
export async function reverseTransfer(
  manager: EntityManager,
  input: { id: string; reversesId: string; code: string; reference?: string },
): Promise<TransferOutcome> {
  const [original]: TransferRow[] = await manager.query(
    `SELECT * FROM ledger_transfers WHERE transfer_id = $1`,
    [input.reversesId],
  );
  if (!original) throw new LedgerError('TRANSFER_NOT_FOUND', `no transfer ${input.reversesId}`);
  if (original.kind !== 'POSTED') {
    throw new LedgerError(
      'INVALID_TRANSFER',
      `${input.reversesId} is ${original.kind}: only a posted transfer can be reversed`,
    );
  }
  const [outcome] = await insertAndApply(manager, [
    {
      id: input.id,
      debit: String(original.credit_account_id),
      credit: String(original.debit_account_id),
      asset: original.asset,
      amount: String(original.amount),
      kind: 'POSTED',
      code: input.code,
      reference: input.reference ?? null,
      reversesId: input.reversesId,
    },
  ]);
  return outcome;
}

interface Row {
  id: string;
  debit: string;
  credit: string;
  asset: string;
  amount: string;
  kind: string;
  code: string;
  reference: string | null;
  pendingId?: string;
  reversesId?: string;
}

async function insertAndApply(manager: EntityManager, rows: Row[]): Promise<TransferOutcome[]> {
  // Lock every account the batch touches in one order, so two batches never deadlock.
  const accountIds = [...new Set(rows.flatMap((r) => [r.debit, r.credit]))];
  await manager.query(
    `SELECT 1 FROM ledger_accounts WHERE ledger_account_id = ANY($1::bigint[])
      ORDER BY ledger_account_id FOR UPDATE`,
    [accountIds],
  );
  let inserted: Array<{ transfer_id: string }>;
  try {
    inserted = await manager.query(
      `INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, asset, amount,
                                     kind, code, reference, pending_id, reverses_id)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[],
                            $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
       ON CONFLICT (transfer_id) DO NOTHING
       RETURNING transfer_id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.debit),
        rows.map((r) => r.credit),
        rows.map((r) => r.asset),
        rows.map((r) => r.amount),
        rows.map((r) => r.kind),
        rows.map((r) => r.code),
        rows.map((r) => r.reference),
        rows.map((r) => r.pendingId ?? null),
        rows.map((r) => r.reversesId ?? null),
      ],
    );
  } catch (error) {
    throw translate(error);
  }
  const created = new Set(inserted.map((r) => r.transfer_id));
  const existing = rows.filter((r) => !created.has(r.id));
  if (existing.length > 0) await checkSameFields(manager, existing);
  const fresh = rows.filter((r) => created.has(r.id));
  if (fresh.length > 0) {
    // Per account and column, what the fresh transfers add (a close takes its pending amount off).
    const deltas = new Map<string, { dp: bigint; dP: bigint; cp: bigint; cP: bigint }>();
    const add = (account: string, field: 'dp' | 'dP' | 'cp' | 'cP', amount: bigint) => {
      const d = deltas.get(account) ?? { dp: 0n, dP: 0n, cp: 0n, cP: 0n };
      d[field] += amount;
      deltas.set(account, d);
    };
    for (const r of fresh) {
      const amount = BigInt(r.amount);
      switch (r.kind) {
        case 'POSTED':
          add(r.debit, 'dP', amount);
          add(r.credit, 'cP', amount);
          break;
        case 'PENDING':
          add(r.debit, 'dp', amount);
          add(r.credit, 'cp', amount);
          break;
        case 'POST_PENDING':
          add(r.debit, 'dp', -amount);
          add(r.credit, 'cp', -amount);
          add(r.debit, 'dP', amount);
          add(r.credit, 'cP', amount);
          break;
        case 'VOID_PENDING':
          add(r.debit, 'dp', -amount);
          add(r.credit, 'cp', -amount);
          break;
        default:
          throw new LedgerError('INVALID_TRANSFER', `unknown kind ${r.kind}`);
      }
    }
    const entries = [...deltas.entries()];
    try {
      await manager.query(
        `UPDATE ledger_accounts a SET
           debits_pending = a.debits_pending + d.dpend, debits_posted = a.debits_posted + d.dpost,
           credits_pending = a.credits_pending + d.cpend, credits_posted = a.credits_posted + d.cpost
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
              AS d(id, dpend, dpost, cpend, cpost)
         WHERE a.ledger_account_id = d.id`,
        [
          entries.map(([id]) => id),
          entries.map(([, d]) => d.dp.toString()),
          entries.map(([, d]) => d.dP.toString()),
          entries.map(([, d]) => d.cp.toString()),
          entries.map(([, d]) => d.cP.toString()),
        ],
      );
    } catch (error) {
      throw translate(error);
    }
  }
  return rows.map((r) => ({ id: r.id, created: created.has(r.id) }));
}

async function checkSameFields(manager: EntityManager, rows: Row[]): Promise<void> {
  const stored: TransferRow[] = await manager.query(
    `SELECT * FROM ledger_transfers WHERE transfer_id = ANY($1)`,
    [rows.map((r) => r.id)],
  );
  const byId = new Map(stored.map((s) => [s.transfer_id, s]));
  for (const r of rows) {
    const s = byId.get(r.id);
    const same =
      s !== undefined &&
      String(s.debit_account_id) === r.debit &&
      String(s.credit_account_id) === r.credit &&
      String(s.amount) === r.amount &&
      s.kind === r.kind &&
      s.code === r.code &&
      (s.pending_id ?? undefined) === r.pendingId &&
      (s.reverses_id ?? undefined) === r.reversesId;
    if (!same) {
      throw new LedgerError(
        'EXISTS_WITH_DIFFERENT_FIELDS',
        `transfer ${r.id} already exists with different fields`,
      );
    }
  }
}

function translate(error: unknown): unknown {
  const e = error as { code?: string; constraint?: string; detail?: string };
  if (e.code === '23514' && e.constraint === 'ledger_accounts_no_overdraft') {
    return new LedgerError(
      'EXCEEDS_CREDITS',
      `the transfer would take an account below zero (${e.detail ?? 'no detail'})`,
    );
  }
  if (e.code === '23505' && e.constraint === 'ledger_transfers_one_close') {
    return new LedgerError('PENDING_ALREADY_CLOSED', 'the pending transfer is already closed');
  }
  if (e.code === '23505' && e.constraint === 'ledger_transfers_one_reversal') {
    return new LedgerError('ALREADY_REVERSED', 'the transfer has been reversed already');
  }
  return error;
}

/** Balance (credits - debits posted) and what is available to debit now. */
export interface LedgerBalance {
  readonly kind: LedgerAccountKind;
  readonly party: string;
  readonly asset: string;
  readonly assetKind: AssetKind;
  readonly posted: bigint;
  readonly available: bigint;
  readonly debitsPending: bigint;
  readonly creditsPending: bigint;
}

export async function readBalances(
  manager: EntityManager,
  filter: { party?: string; kind?: LedgerAccountKind } = {},
): Promise<LedgerBalance[]> {
  const rows: Array<Record<string, string>> = await manager.query(
    `SELECT kind, party, asset, asset_kind, debits_pending, debits_posted, credits_pending, credits_posted
       FROM ledger_accounts
      WHERE ($1::text IS NULL OR party = $1) AND ($2::text IS NULL OR kind = $2)
      ORDER BY kind, party, asset`,
    [filter.party ?? null, filter.kind ?? null],
  );
  return rows.map((r) => {
    const posted = BigInt(r.credits_posted) - BigInt(r.debits_posted);
    return {
      kind: r.kind as LedgerAccountKind,
      party: r.party,
      asset: r.asset,
      assetKind: r.asset_kind as AssetKind,
      posted,
      available: posted - BigInt(r.debits_pending),
      debitsPending: BigInt(r.debits_pending),
      creditsPending: BigInt(r.credits_pending),
    };
  });
}
