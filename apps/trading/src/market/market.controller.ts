// Market data from the books the matching engine holds: L1 (best bid and ask, last, volume) and L2,
// as snapshots and as a server-sent event stream of trades and book changes.
import { Currency, formatMoney, money } from '@finance/money';
import { parseOrProblem as parse, ProblemException } from '@finance/platform';
import { fields } from '@finance/contracts';
import { BeforeApplicationShutdown, Controller, Get, Param, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { Instrument, MatchingEngine } from '../matching/matching-engine';
import { fieldProblem } from '../problems';

const depthQuery = z.object({ levels: z.coerce.number().int().min(1).max(100).default(10) });

interface Level {
  price: number;
  quantity: number;
  orders: number;
}

const HEARTBEAT_MS = 15_000;

@Controller('trading/market')
export class MarketController implements BeforeApplicationShutdown {
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly engine: MatchingEngine) {}

  // Streams never end by themselves; close them so the server can drain and stop.
  beforeApplicationShutdown(): void {
    for (const stream of this.streams) stream.end();
  }

  /**
   * Server-sent events: `quote` and `depth` (10 levels) now and after every committed change of the
   * book, `trade` for each execution.
   */
  @Get(':symbol/stream')
  stream(
    @Param('symbol') symbol: string,
    @Query() query: unknown,
    @Res() reply: FastifyReply,
  ): void {
    const instrument = this.instrument(symbol);
    const { levels } = parse(depthQuery, query, 'query');
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    const send = (event: string, data: unknown) =>
      raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const book = () => {
      send('quote', this.quote(instrument.symbol));
      send('depth', this.depth(instrument.symbol, { levels }));
    };
    book();
    const unsubscribe = this.engine.onMarket(instrument.symbol, (event) => {
      if (event.type === 'book') return book();
      send('trade', {
        tradeId: event.tradeId,
        symbol: event.symbol,
        price: formatMoney(money(instrument.currency, event.price)),
        quantity: event.quantity.toString(),
        executedAt: event.executedAt,
      });
    });
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
    this.streams.add(raw);
    raw.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      this.streams.delete(raw);
    });
  }

  @Get(':symbol')
  quote(@Param('symbol') symbol: string) {
    const instrument = this.instrument(symbol);
    const top = this.engine.book(instrument.symbol)?.top() ?? { bid: null, ask: null };
    const stats = this.engine.marketStats(instrument.symbol);
    return {
      symbol: instrument.symbol,
      currency: instrument.currency,
      bid: top.bid ? this.level(instrument, top.bid) : null,
      ask: top.ask ? this.level(instrument, top.ask) : null,
      last: stats.last === null ? null : formatMoney(money(instrument.currency, stats.last)),
      volume: stats.volume.toString(),
      trades: stats.trades,
    };
  }

  @Get(':symbol/depth')
  depth(@Param('symbol') symbol: string, @Query() query: unknown) {
    const instrument = this.instrument(symbol);
    const { levels } = parse(depthQuery, query, 'query');
    const book = this.engine.book(instrument.symbol)?.depth(levels) ?? { bids: [], asks: [] };
    return {
      symbol: instrument.symbol,
      currency: instrument.currency,
      bids: book.bids.map((l) => this.level(instrument, l)),
      asks: book.asks.map((l) => this.level(instrument, l)),
    };
  }

  private instrument(symbol: string): Instrument {
    const parsed = parse(fields.symbol, symbol, 'symbol');
    if (!this.engine.leading) {
      throw new ProblemException({
        status: 503,
        title: 'books not loaded here',
        detail: 'this replica does not run the matching engine; ask the leader',
      });
    }
    const instrument = this.engine.instrument(parsed);
    if (!instrument)
      throw fieldProblem(404, 'unknown symbol', 'symbol', `${parsed} is not traded here`);
    return instrument;
  }

  private level(instrument: Instrument, level: Level) {
    return {
      price: formatMoney(
        money(instrument.currency as Currency, BigInt(level.price) * instrument.tickSize),
      ),
      quantity: (BigInt(level.quantity) * instrument.lotSize).toString(),
      orders: level.orders,
    };
  }
}
