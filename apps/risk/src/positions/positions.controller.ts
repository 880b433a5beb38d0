// Positions, P&L and exposure for risk officers (and compliance, which reads everything).
import { parseOrProblem as parse } from '@finance/platform';
import { Controller, Get, Param } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { accountIdParam } from '../limits/limits';
import { accountPositions, exposure } from './positions.view';

@Controller('risk')
export class PositionsController {
  constructor(private readonly dataSource: DataSource) {}

  @Get('accounts/:accountId/positions')
  positions(@Param('accountId') id: string) {
    return accountPositions(this.dataSource, parse(accountIdParam, id, 'accountId'));
  }

  @Get('accounts/:accountId/exposure')
  accountExposure(@Param('accountId') id: string) {
    return exposure(this.dataSource, parse(accountIdParam, id, 'accountId'));
  }

  /** The firm's gross and net exposure per currency, with each account's. */
  @Get('exposure')
  firmExposure() {
    return exposure(this.dataSource);
  }
}
