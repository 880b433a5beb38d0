import { DueTrade, net, positionKey } from './netting';

const trade = (
  id: string,
  buyer: string,
  seller: string,
  qty: bigint,
  price: bigint,
  fee = 0n,
): DueTrade => ({
  tradeId: id,
  symbol: 'AAPL',
  currency: 'USD',
  quantity: qty,
  value: qty * price,
  buyerFee: fee,
  buyer,
  seller,
});
const cash = (party: string) => positionKey({ party, assetKind: 'CASH', asset: 'USD' });
const shares = (party: string) => positionKey({ party, assetKind: 'SECURITY', asset: 'AAPL' });

describe('multilateral netting', () => {
  it('nets a chain: B buys from A and sells on to C, delivering only what it receives', () => {
    const trades = [trade('t1', 'B', 'A', 100n, 1000n, 5n), trade('t2', 'C', 'B', 100n, 1010n)];
    // B holds no shares and no cash: its net is +1000 cash - 5 fee and zero shares.
    const available = new Map([
      [cash('C'), 101_000n],
      [shares('A'), 100n],
    ]);
    const result = net(trades, available);
    expect(result.failed.size).toBe(0);
    expect(result.settled.map((t) => t.tradeId)).toEqual(['t1', 't2']);
    expect(result.nets.get(cash('B'))!.net).toBe(101_000n - 100_005n);
    expect(result.nets.get(shares('B'))!.net).toBe(0n);
    expect(result.fees.get('USD')).toBe(5n);
    // Every asset nets to zero across the parties once fees are counted.
    const total = [...result.nets.values()]
      .filter((n) => n.position.assetKind === 'CASH')
      .reduce((sum, n) => sum + n.net, 0n);
    expect(total + result.fees.get('USD')!).toBe(0n);
  });

  it('fails the trades of a seller short of shares, and whatever depended on them', () => {
    const trades = [trade('t1', 'B', 'A', 100n, 1000n), trade('t2', 'C', 'B', 100n, 1000n)];
    const available = new Map([
      [cash('B'), 100_000n],
      [cash('C'), 100_000n],
      [shares('A'), 40n],
    ]);
    const result = net(trades, available);
    expect(result.settled).toEqual([]);
    expect(result.failed.get('t1')).toEqual({
      code: 'INSUFFICIENT_SECURITIES',
      message: 'seller A is short 60 AAPL for its net delivery',
    });
    // Without t1, B cannot deliver to C either.
    expect(result.failed.get('t2')!.code).toBe('INSUFFICIENT_SECURITIES');
  });

  it('fails a buyer short of cash and settles the rest', () => {
    const trades = [trade('t1', 'B', 'A', 10n, 1000n), trade('t2', 'D', 'A', 10n, 1000n)];
    const available = new Map([
      [cash('B'), 9_999n],
      [cash('D'), 10_000n],
      [shares('A'), 20n],
    ]);
    const result = net(trades, available);
    expect(result.settled.map((t) => t.tradeId)).toEqual(['t2']);
    expect(result.failed.get('t1')!.code).toBe('INSUFFICIENT_CASH');
  });
});
