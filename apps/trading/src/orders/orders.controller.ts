// REST for orders: place, read, list and cancel. Every input is checked before anything is reserved.
import { parseOrProblem as parse, requestActor as actor } from '@finance/platform';
import { Body, Controller, Delete, Get, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import {
  Answer,
  listOrdersQuery,
  OrdersService,
  placeOrderBody,
  replaceOrderBody,
} from './orders.service';

const orderId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an order id');

function answer(reply: FastifyReply, result: Answer) {
  reply.status(result.status);
  if (result.status === 202) {
    const url = `/trading/orders/${result.order.orderId}`;
    reply.header('location', url);
    return { ...result.order, poll: url };
  }
  return result.order;
}

@Controller('trading/orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  @Post()
  async place(
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const input = parse(placeOrderBody, body ?? {}, 'body');
    return answer(reply, await this.orders.place(input, actor(request)));
  }

  @Get()
  list(@Query() query: unknown) {
    return this.orders.list(parse(listOrdersQuery, query, 'query'));
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.orders.get(parse(orderId, id, 'id'));
  }

  @Patch(':id')
  async replace(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const change = parse(replaceOrderBody, body ?? {}, 'body');
    return answer(
      reply,
      await this.orders.replace(parse(orderId, id, 'id'), change, actor(request)),
    );
  }

  @Delete(':id')
  async cancel(
    @Param('id') id: string,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return answer(reply, await this.orders.cancel(parse(orderId, id, 'id'), actor(request)));
  }
}
