// REST for accounts: open one, fund it (cash or shares), withdraw, and read its balances.
import { fields } from '@finance/contracts';
import { parseOrProblem as parse, requestActor as actor } from '@finance/platform';
import { Body, Controller, Get, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { AccountsService, Direction } from './accounts.service';

const identifier = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 letters, digits or . _ : -');
const accountId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id');

export const openAccountBody = z.object({ accountId, owner: identifier }).strict();
export const transferBody = z.union([
  z
    .object({ requestId: identifier, currency: fields.currency, amount: fields.positiveDecimal })
    .strict(),
  z.object({ requestId: identifier, symbol: fields.symbol, quantity: fields.quantity }).strict(),
]);

@Controller('trading/accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Post()
  async open(
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const result = await this.accounts.open(
      parse(openAccountBody, body ?? {}, 'body'),
      actor(request),
    );
    reply.status(result.created ? 201 : 200);
    return result.account;
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.accounts.view(parse(accountId, id, 'id'));
  }

  @Post(':id/deposits')
  deposit(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return this.transfer('DEPOSIT', id, body, request, reply);
  }

  @Post(':id/withdrawals')
  withdraw(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return this.transfer('WITHDRAWAL', id, body, request, reply);
  }

  private async transfer(
    direction: Direction,
    id: string,
    body: unknown,
    request: unknown,
    reply: FastifyReply,
  ) {
    const account = parse(accountId, id, 'id');
    const input = parse(transferBody, body ?? {}, 'body');
    const result = await this.accounts.transfer(account, direction, input, actor(request));
    reply.status(result.replayed ? 200 : 201);
    return result.account;
  }
}
