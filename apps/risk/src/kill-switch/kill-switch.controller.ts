// The kill switch over REST (risk officer): engage for the firm, an account or a symbol, release by
// an explicit call, and read what is engaged. Who acted is the caller the guard verified.
import {
  parseOrProblem as parse,
  ProblemException,
  requestActor,
  SERVICE_CONFIG,
} from '@finance/platform';
import { BaseConfig } from '@finance/platform';
import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { requestId } from '../limits/limits.controller';
import {
  engageKillSwitch,
  KillScope,
  killScopeBody,
  releaseBody,
  releaseKillSwitch,
  SwitchRow,
  switchView,
} from './kill-switch';
import { registerKillSwitchMetrics } from './kill-switch.metrics';

function scopeOf(body: { scope: string; accountId?: string; symbol?: string }): KillScope {
  if (body.scope === 'ACCOUNT') return { scope: 'ACCOUNT', accountId: body.accountId! };
  if (body.scope === 'SYMBOL') return { scope: 'SYMBOL', symbol: body.symbol! };
  return { scope: 'FIRM' };
}

@Controller('risk/kill-switch')
export class KillSwitchController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
  ) {
    registerKillSwitchMetrics(dataSource);
  }

  /** Every engaged switch, newest first. */
  @Get()
  async engaged() {
    const rows: SwitchRow[] = await this.dataSource.query(
      `SELECT * FROM risk_kill_switches WHERE released_at IS NULL ORDER BY engaged_at DESC`,
    );
    return { engaged: rows.map(switchView) };
  }

  /** 201 when this call engaged it, 200 when it already was (nothing changes, no second event). */
  @Post()
  async engage(
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const parsed = parse(killScopeBody, body ?? {}, 'body');
    const result = await this.dataSource.transaction((manager) =>
      engageKillSwitch(manager, this.config.KAFKA_TOPIC_PREFIX, {
        scope: scopeOf(parsed),
        reason: parsed.reason,
        source: 'MANUAL',
        by: requestActor(request),
        correlationId: requestId(request),
      }),
    );
    reply.status(result.engaged ? 201 : 200);
    return result.switch;
  }

  @Post('release')
  @HttpCode(200)
  async release(@Body() body: unknown, @Req() request: unknown) {
    const parsed = parse(releaseBody, body ?? {}, 'body');
    const scope = scopeOf(parsed);
    const released = await this.dataSource.transaction((manager) =>
      releaseKillSwitch(manager, this.config.KAFKA_TOPIC_PREFIX, {
        scope,
        reason: parsed.reason,
        by: requestActor(request),
        correlationId: requestId(request),
      }),
    );
    if (!released) {
      throw new ProblemException({
        status: 409,
        title: 'kill switch not engaged',
        detail: `no kill switch is engaged for ${JSON.stringify(scope)}`,
      });
    }
    return released;
  }
}
