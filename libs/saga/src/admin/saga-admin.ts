// Operator REST API over a saga orchestrator: list stuck or parked sagas, inspect one with every
// attempt, retry now, resolve a parked saga with a note. Mounted by the hosting service under its prefix.
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
  parseOrProblem,
  listingQueryFields,
  ProblemException,
  requestActor,
} from '@finance/platform';
import { z } from 'zod';
import { SAGA_STATUSES } from '../core/state';
import { SagaError } from '../errors';
import { SagaOrchestrator } from '../orchestrator/saga-orchestrator';

export const SAGA_ORCHESTRATOR = Symbol('SAGA_ORCHESTRATOR');

const listQuery = z.object({
  state: z.enum(SAGA_STATUSES).optional(),
  ...listingQueryFields,
});
const actionBody = z.object({ note: z.string().trim().min(1).max(2_000).optional() }).default({});
const resolveBody = z.object({ note: z.string().trim().min(1).max(2_000) });
const sagaId = z.string().min(1).max(128);

async function translate<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SagaError && error.status < 500) {
      throw new ProblemException({
        status: error.status,
        title: error.code.toLowerCase().replace(/_/g, ' '),
        detail: error.message,
      });
    }
    throw error;
  }
}

export function sagaAdminController(basePath: string): Type<unknown> {
  @Controller(basePath)
  class SagaAdminController {
    constructor(@Inject(SAGA_ORCHESTRATOR) private readonly orchestrator: SagaOrchestrator) {}

    @Get('sagas')
    async list(@Query() query: unknown) {
      const { state, olderThanSeconds, limit } = parseOrProblem(listQuery, query, 'query');
      return {
        sagas: await this.orchestrator.list({
          state,
          olderThanMs: (olderThanSeconds ?? 0) * 1000,
          ...(limit ? { limit } : {}),
        }),
      };
    }

    @Get('sagas/:id')
    async get(@Param('id') id: string) {
      const saga = await this.orchestrator.get(parseOrProblem(sagaId, id, 'id'));
      if (!saga)
        throw new ProblemException({
          status: 404,
          title: 'saga not found',
          detail: `saga ${id} does not exist`,
        });
      return saga;
    }

    @Post('sagas/:id/retry')
    @HttpCode(200)
    retry(@Param('id') id: string, @Body() body: unknown, @Req() request: unknown) {
      const { note } = parseOrProblem(actionBody, body ?? {}, 'body');
      return translate(() =>
        this.orchestrator.retryNow(parseOrProblem(sagaId, id, 'id'), {
          actor: requestActor(request),
          ...(note ? { note } : {}),
        }),
      );
    }

    // A parked saga is closed only with a note saying what the operator did about it.
    @Post('sagas/:id/resolve')
    @HttpCode(200)
    resolve(@Param('id') id: string, @Body() body: unknown, @Req() request: unknown) {
      const { note } = parseOrProblem(resolveBody, body ?? {}, 'body');
      return translate(() =>
        this.orchestrator.resolveParked(parseOrProblem(sagaId, id, 'id'), {
          actor: requestActor(request),
          note,
        }),
      );
    }
  }
  return SagaAdminController;
}

@Module({})
export class SagaAdminModule {
  static register(options: { basePath: string; orchestrator: SagaOrchestrator }): DynamicModule {
    return {
      module: SagaAdminModule,
      controllers: [sagaAdminController(options.basePath)],
      providers: [{ provide: SAGA_ORCHESTRATOR, useValue: options.orchestrator }],
    };
  }
}
