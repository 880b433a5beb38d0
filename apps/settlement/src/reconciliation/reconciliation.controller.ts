// GET /settlement/reconciliation?date=: the ledger against trading's balances, every difference
// listed. Trading is read over mutual TLS as settlement-service (off the mesh the server must be
// trading-service).
import {
  HttpClient,
  HttpResponse,
  HttpTransportError,
  parseOrProblem as parse,
  ProblemException,
  SERVICE_CONFIG,
  SERVICE_IDENTITY,
  ServiceIdentity,
  serviceHttpClient,
  workloadPrincipal,
} from '@finance/platform';
import { Controller, Get, Inject, OnModuleDestroy, Query } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import type { SettlementConfig } from '../config';
import { reconcile, TradingPage } from './reconciliation';

const query = z.strictObject({
  date: z.iso.date({ message: 'must be a date, YYYY-MM-DD' }).optional(),
});

@Controller('settlement/reconciliation')
export class ReconciliationController implements OnModuleDestroy {
  private readonly http: HttpClient;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: Pick<SettlementConfig, 'TRADING_URL'>,
    @Inject(SERVICE_IDENTITY) identity: ServiceIdentity,
  ) {
    this.http = serviceHttpClient(identity, { timeoutMs: 30_000, maxResponseBytes: 64 << 20 });
  }

  onModuleDestroy(): void {
    this.http.close();
  }

  @Get()
  async run(@Query() input: unknown) {
    const q = parse(query, input ?? {}, 'query');
    const today = new Date().toISOString().slice(0, 10);
    const date = q.date ?? today;
    if (date > today) {
      throw new ProblemException({
        status: 422,
        title: 'Business date in the future',
        detail: `date ${date} is after today (${today})`,
        errors: [{ field: 'date', message: 'must not be after today' }],
      });
    }
    return reconcile(this.dataSource, date, (after, cycles) => this.page(after, cycles));
  }

  private async page(after: string | null, cycles: string[]): Promise<TradingPage> {
    const url = new URL('/trading/balances', this.config.TRADING_URL);
    url.searchParams.set('limit', '5000');
    if (after) url.searchParams.set('after', after);
    if (cycles.length > 0) url.searchParams.set('cycles', cycles.join(','));
    let response: HttpResponse;
    try {
      response = await this.http.request(url, { expectedPeer: workloadPrincipal('trading') });
    } catch (error) {
      if (!(error instanceof HttpTransportError)) throw error;
      throw new ProblemException({
        status: 503,
        title: 'Trading is unreachable',
        detail: `GET ${url.pathname}: ${error.message}; nothing was compared, try again`,
      });
    }
    if (response.status !== 200) {
      throw new ProblemException({
        status: 502,
        title: 'Trading did not answer with its balances',
        detail: `GET ${url.pathname} answered ${response.status}: ${response.body.slice(0, 500)}`,
      });
    }
    return response.json<TradingPage>();
  }
}
