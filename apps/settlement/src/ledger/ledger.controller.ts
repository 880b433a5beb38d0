// REST over the ledger: balances per account and asset, the ledger's trial balance (debits equal
// credits for every asset), and two operator corrections, each an audited event: reversing a posted
// transfer, and recording cash or shares the bank or custodian reports received or delivered.
import { OperatorActionRecorded, SYSTEM_CATALOG } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import { isCurrency, parseMoney } from '@finance/money';
import {
  BaseConfig,
  parseOrProblem as parse,
  ProblemException,
  requestActor,
  SERVICE_CONFIG,
} from '@finance/platform';
import { Body, Controller, Get, HttpCode, Inject, Post, Query, Req } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import {
  clientAccount,
  createTransfers,
  externalAccount,
  LedgerError,
  readBalances,
  reverseTransfer,
} from './ledger';

const id = z.string().regex(/^[A-Za-z0-9_/:.-]{1,200}$/, 'must be a transfer id');
const accountId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id');

const balancesQuery = z.strictObject({
  party: z.string().min(1).max(128).optional(),
  kind: z.enum(['CLIENT', 'CCP', 'FEES', 'EXTERNAL']).optional(),
});
const reversalBody = z.strictObject({
  transferId: id,
  reason: z.string().min(1).max(2000),
});
const movementBody = z.strictObject({
  /** Names the correction; sending it again changes nothing. */
  movementId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -'),
  accountId,
  direction: z.enum(['RECEIVED', 'DELIVERED']),
  assetKind: z.enum(['CASH', 'SECURITY']),
  /** A currency code for CASH, a symbol for SECURITY. */
  asset: z.string().regex(/^[A-Z0-9.]{1,12}$/, 'must be a currency code or a symbol'),
  /** A decimal amount for CASH, whole shares for SECURITY. */
  amount: z.string().regex(/^\d{1,20}(\.\d{1,10})?$/, 'must be a positive decimal string'),
  reason: z.string().min(1).max(2000),
});

const LEDGER_PROBLEMS: Record<string, number> = {
  TRANSFER_NOT_FOUND: 404,
  ALREADY_REVERSED: 409,
  EXISTS_WITH_DIFFERENT_FIELDS: 409,
  EXCEEDS_CREDITS: 422,
  INVALID_TRANSFER: 422,
};

function problem(error: LedgerError, field: string): ProblemException {
  return new ProblemException({
    status: LEDGER_PROBLEMS[error.code] ?? 409,
    title: error.code,
    detail: error.message,
    errors: [{ field, message: error.message }],
  });
}

@Controller('settlement')
export class LedgerController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
  ) {}

  @Get('ledger/balances')
  async balances(@Query() query: unknown) {
    const q = parse(balancesQuery, query ?? {}, 'query');
    const rows = await readBalances(this.dataSource.manager, q);
    return {
      balances: rows.map((r) => ({
        kind: r.kind,
        party: r.party,
        assetKind: r.assetKind,
        asset: r.asset,
        balance: r.posted.toString(),
        available: r.available.toString(),
        debitsPending: r.debitsPending.toString(),
        creditsPending: r.creditsPending.toString(),
      })),
    };
  }

  /** Per asset: total debits and credits, posted and pending. They are equal in a sound ledger. */
  @Get('ledger/trial-balance')
  async trialBalance() {
    const rows: Array<Record<string, string>> = await this.dataSource.query(
      `SELECT asset_kind AS "assetKind", asset,
              sum(debits_posted)::text AS "debitsPosted", sum(credits_posted)::text AS "creditsPosted",
              sum(debits_pending)::text AS "debitsPending", sum(credits_pending)::text AS "creditsPending"
         FROM ledger_accounts GROUP BY asset_kind, asset ORDER BY asset_kind, asset`,
    );
    return {
      assets: rows.map((r) => ({
        ...r,
        balanced: r.debitsPosted === r.creditsPosted && r.debitsPending === r.creditsPending,
      })),
    };
  }

  @Post('admin/ledger/reversals')
  @HttpCode(201)
  async reverse(@Body() body: unknown, @Req() request: unknown) {
    const input = parse(reversalBody, body ?? {}, 'body');
    const actor = requestActor(request);
    return this.dataSource.transaction(async (manager) => {
      try {
        const outcome = await reverseTransfer(manager, {
          id: `reversal/${input.transferId}`,
          reversesId: input.transferId,
          code: 'OPERATOR_REVERSAL',
          reference: input.reason,
        });
        if (outcome.created) {
          await this.audit(manager, actor, 'reverse-transfer', input.transferId, input.reason);
        }
        return { transferId: outcome.id, reverses: input.transferId, created: outcome.created };
      } catch (error) {
        if (error instanceof LedgerError) throw problem(error, 'transferId');
        throw error;
      }
    });
  }

  @Post('admin/ledger/movements')
  @HttpCode(201)
  async movement(@Body() body: unknown, @Req() request: unknown) {
    const input = parse(movementBody, body ?? {}, 'body');
    let amount: bigint;
    if (input.assetKind === 'CASH') {
      if (!isCurrency(input.asset)) {
        throw new ProblemException({
          status: 422,
          title: 'Unsupported currency',
          detail: `${input.asset} is not a supported currency`,
          errors: [{ field: 'asset', message: 'unsupported currency' }],
        });
      }
      try {
        amount = parseMoney(input.asset, input.amount).minor;
      } catch (error) {
        throw new ProblemException({
          status: 422,
          title: 'Invalid amount',
          detail: (error as Error).message,
          errors: [{ field: 'amount', message: (error as Error).message }],
        });
      }
    } else if (/^\d+$/.test(input.amount)) {
      amount = BigInt(input.amount);
    } else {
      throw new ProblemException({
        status: 422,
        title: 'Invalid amount',
        detail: 'shares are whole numbers',
        errors: [{ field: 'amount', message: 'must be a whole number of shares' }],
      });
    }
    if (amount <= 0n) {
      throw new ProblemException({
        status: 422,
        title: 'Invalid amount',
        detail: 'the amount must be greater than zero',
        errors: [{ field: 'amount', message: 'must be > 0' }],
      });
    }
    const actor = requestActor(request);
    const client = clientAccount(input.accountId, input.asset, input.assetKind);
    const outside = externalAccount(input.asset, input.assetKind);
    const transferId = `movement/${input.movementId}`;
    return this.dataSource.transaction(async (manager) => {
      try {
        const [outcome] = await createTransfers(manager, [
          {
            id: transferId,
            debit: input.direction === 'RECEIVED' ? outside : client,
            credit: input.direction === 'RECEIVED' ? client : outside,
            amount,
            code: `OPERATOR_${input.direction}`,
            reference: input.reason,
          },
        ]);
        if (outcome.created) {
          await this.audit(
            manager,
            actor,
            `record-${input.direction.toLowerCase()}`,
            transferId,
            input.reason,
          );
        }
        return { transferId, created: outcome.created };
      } catch (error) {
        if (error instanceof LedgerError) throw problem(error, 'movementId');
        throw error;
      }
    });
  }

  private async audit(
    manager: EntityManager,
    actor: string,
    action: string,
    transferId: string,
    note: string,
  ): Promise<void> {
    const envelope = createEnvelope(
      OperatorActionRecorded,
      { actor, action, target: { kind: 'ledger-transfer', id: transferId.slice(0, 128) }, note },
      {
        producer: 'settlement',
        aggregateId: transferId.slice(0, 128),
        aggregateSequence: 1,
        correlationId: transferId.slice(0, 128),
      },
    );
    await enqueueOutbox(manager, [
      routeMessage(SYSTEM_CATALOG, envelope, this.config.KAFKA_TOPIC_PREFIX),
    ]);
  }
}
