// REST for legal holds (the compliance officer, per the authorization policy): place, list, release.
import { parseOrProblem as parse, requestActor } from '@finance/platform';
import { Body, Controller, Delete, Get, Param, Post, Query, Req } from '@nestjs/common';
import { requestId } from '../audit/audit-requests';
import { holdIdParam, LegalHold, LegalHolds, listHoldsQuery, placeHoldBody } from './legal-holds';

@Controller('compliance/legal-holds')
export class LegalHoldsController {
  constructor(private readonly holds: LegalHolds) {}

  @Post()
  place(@Body() body: unknown, @Req() request: unknown): Promise<LegalHold> {
    const input = parse(placeHoldBody, body ?? {}, 'body');
    return this.holds.place(input, requestActor(request), requestId(request));
  }

  @Get()
  async list(@Query() query: unknown): Promise<{ holds: LegalHold[] }> {
    const { active } = parse(listHoldsQuery, query ?? {}, 'query');
    return { holds: await this.holds.list(active === undefined ? undefined : active === 'true') };
  }

  @Delete(':id')
  release(@Param('id') id: string, @Req() request: unknown): Promise<LegalHold> {
    return this.holds.release(
      parse(holdIdParam, id, 'path.id'),
      requestActor(request),
      requestId(request),
    );
  }
}
