// Operator REST API over a coordinator: list stuck transactions, inspect one, retry, force-cancel.
// The hosting service mounts it under its own prefix, e.g. `/trading/admin/tcc`.
import {
  Body,
  Controller,
  DynamicModule,
  Get,
  HttpCode,
  Inject,
  Module,
  Param,
  Post,
  Query,
  Req,
  Type,
} from '@nestjs/common';
import {
  parseOrProblem as parse,
  listingQueryFields,
  ProblemException,
  requestActor as actor,
} from '@finance/platform';
import { z } from 'zod';
import {
  InvalidOperatorActionError,
  TccCoordinator,
  UnknownTransactionError,
} from '../coordinator/coordinator';

export const TCC_COORDINATOR = Symbol('TCC_COORDINATOR');

const listQuery = z.object({
  state: z.enum(['TRYING', 'CONFIRMING', 'CANCELLING', 'CONFIRMED', 'CANCELLED']).optional(),
  ...listingQueryFields,
});
const actionBody = z.object({ note: z.string().trim().min(1).max(2_000).optional() }).default({});
const gtidParam = z.string().min(1).max(128);

async function translate<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof UnknownTransactionError) {
      throw new ProblemException({
        status: 404,
        title: 'unknown global transaction',
        detail: error.message,
      });
    }
    if (error instanceof InvalidOperatorActionError) {
      throw new ProblemException({
        status: 409,
        title: 'action not possible in this state',
        detail: error.message,
        state: error.state,
      });
    }
    throw error;
  }
}

export function tccAdminController(basePath: string): Type<unknown> {
  @Controller(basePath)
  class TccAdminController {
    constructor(@Inject(TCC_COORDINATOR) private readonly coordinator: TccCoordinator) {}

    @Get('transactions')
    async list(@Query() query: unknown) {
      const { state, olderThanSeconds, limit } = parse(listQuery, query, 'query');
      return {
        transactions: await this.coordinator.list({
          state,
          olderThanMs: (olderThanSeconds ?? 0) * 1000,
          limit,
        }),
      };
    }

    @Get('transactions/:gtid')
    inspect(@Param('gtid') gtid: string) {
      return translate(() => this.coordinator.inspect(parse(gtidParam, gtid, 'gtid')));
    }

    @Post('transactions/:gtid/retry')
    @HttpCode(200)
    retry(@Param('gtid') gtid: string, @Body() body: unknown, @Req() request: unknown) {
      const { note } = parse(actionBody, body ?? {}, 'body');
      return translate(() =>
        this.coordinator.retryNow(parse(gtidParam, gtid, 'gtid'), actor(request), note),
      );
    }

    @Post('transactions/:gtid/cancel')
    @HttpCode(200)
    cancel(@Param('gtid') gtid: string, @Body() body: unknown, @Req() request: unknown) {
      const { note } = parse(actionBody, body ?? {}, 'body');
      return translate(() =>
        this.coordinator.forceCancel(parse(gtidParam, gtid, 'gtid'), actor(request), note),
      );
    }
  }
  return TccAdminController;
}

@Module({})
export class TccAdminModule {
  /** `coordinator` is the hosting service's coordinator, or a token that provides it. */
  static register(options: { basePath: string; coordinator: TccCoordinator }): DynamicModule {
    return {
      module: TccAdminModule,
      controllers: [tccAdminController(options.basePath)],
      providers: [{ provide: TCC_COORDINATOR, useValue: options.coordinator }],
    };
  }
}
