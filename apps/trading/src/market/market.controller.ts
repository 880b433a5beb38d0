// Market data from the books the matching engine holds: L1 (best bid and ask, last, volume) and L2.
import { Currency, formatMoney, money } from '@finance/money';
import { parseOrProblem as parse, ProblemException } from '@finance/platform';
import { fields } from '@finance/contracts';
import { Controller, Get, Param, Query } from '@nestjs/common';
import { z } from 'zod';
import { Instrument, MatchingEngine } from '../matching/matching-engine';
import { fieldProblem } from '../problems';

const depthQuery = z.object({ levels: z.coerce.number().int().min(1).max(100).default(10) });

interface Level {
  price: number;
  quantity: number;
  orders: number;
}

@Controller('trading/market')
export class MarketController {
  constructor(private readonly engine: MatchingEngine) {}

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
