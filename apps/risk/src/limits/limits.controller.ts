// REST for risk officers: firm-wide limits (/risk/limits) and an account's (/risk/limits/:accountId).
// Who may call is the authorization policy's business (risk-officer writes, compliance reads).
import { Body, Controller, Get, Inject, Param, Put, Req } from '@nestjs/common';
import { parseOrProblem as parse, requestActor, SERVICE_CONFIG } from '@finance/platform';
import { formatMoney, isCurrency, money } from '@finance/money';
import { DataSource } from 'typeorm';
import { accountIdParam, limitsBody, LimitsConfig, readLimits, setLimits } from './limits';

@Controller('risk/limits')
export class LimitsController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: LimitsConfig,
  ) {}

  @Get()
  firm() {
    return readLimits(this.dataSource, this.config, { scope: 'FIRM' });
  }

  @Put()
  setFirm(@Body() body: unknown, @Req() request: unknown) {
    return setLimits(this.dataSource, this.config, {
      scope: { scope: 'FIRM' },
      changes: parse(limitsBody, body ?? {}, 'body'),
      changedBy: requestActor(request),
      correlationId: requestId(request),
    });
  }

  @Get(':accountId')
  async account(@Param('accountId') id: string) {
    const accountId = parse(accountIdParam, id, 'accountId');
    const view = await readLimits(this.dataSource, this.config, { scope: 'ACCOUNT', accountId });
    return { ...view, reservations: await openReservations(this.dataSource, accountId) };
  }

  @Put(':accountId')
  async setAccount(@Param('accountId') id: string, @Body() body: unknown, @Req() request: unknown) {
    const accountId = parse(accountIdParam, id, 'accountId');
    return setLimits(this.dataSource, this.config, {
      scope: { scope: 'ACCOUNT', accountId },
      changes: parse(limitsBody, body ?? {}, 'body'),
      changedBy: requestActor(request),
      correlationId: requestId(request),
    });
  }
}

/** What the account's placements still hold in risk (RESERVED or CONFIRMED), oldest first. */
async function openReservations(dataSource: DataSource, accountId: string) {
  const rows: Array<{
    gtid: string;
    order_id: string;
    currency: string;
    amount_minor: string;
    state: 'RESERVED' | 'CONFIRMED';
    created_at: Date;
  }> = await dataSource.query(
    `SELECT gtid, order_id, currency, amount_minor, state, created_at FROM risk_reservations
     WHERE account_id = $1 AND state <> 'RELEASED' ORDER BY created_at, gtid LIMIT 1000`,
    [accountId],
  );
  return rows.map((r) => ({
    gtid: r.gtid,
    orderId: r.order_id,
    amount: isCurrency(r.currency)
      ? formatMoney(money(r.currency, BigInt(r.amount_minor)))
      : r.amount_minor,
    currency: r.currency,
    state: r.state,
    reservedAt: r.created_at.toISOString(),
  }));
}

/** The caller's x-request-id, so the RiskLimitChanged events lead back to the request's logs. */
export function requestId(request: unknown): string | undefined {
  const header = (request as { headers?: Record<string, unknown> }).headers?.['x-request-id'];
  return typeof header === 'string' && header.length > 0 && header.length <= 128
    ? header
    : undefined;
}
