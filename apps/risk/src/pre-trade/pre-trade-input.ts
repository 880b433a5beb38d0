// What the pre-trade policy is told about an order: everything risk knows that bears on it, read in
// one statement inside the Try's transaction after the account's row is locked, so the counters and
// the exposure include every order reserved before this one.
import { Currency, formatMoney, money } from '@finance/money';
import type { EntityManager } from 'typeorm';
import type { RiskConfig } from '../config';
import { LimitValue, policyLevels } from '../limits/limits';
import type { PlacementOrder } from '../risk-quota/placement-payload';
import type { RiskPolicyInput } from './risk-policy';

interface FactsRow {
  limits: Array<{ scope: string; name: string; currency: string; value: LimitValue }>;
  switches: Array<{
    scope: 'FIRM' | 'ACCOUNT' | 'SYMBOL';
    accountId: string | null;
    symbol: string | null;
    reason: string;
  }>;
  last_second: string;
  last_minute: string;
  duplicate_age_ms: string | null;
  position: string | null;
  open_buy: string;
  open_sell: string;
  open_minor: string;
  positions_minor: string;
  reference_minor: string | null;
}

// $1 account, $2 symbol, $3 currency, $4 side, $5 type, $6 price, $7 quantity.
const FACTS = `
SELECT
  (SELECT coalesce(json_agg(json_build_object('scope', scope, 'name', name, 'currency', currency, 'value', value)), '[]')
     FROM risk_limit_values
    WHERE (scope = 'FIRM' OR (scope = 'ACCOUNT' AND account_id = $1)) AND currency IN ('', $3)) AS limits,
  (SELECT coalesce(json_agg(json_build_object('scope', scope, 'accountId', account_id, 'symbol', symbol, 'reason', reason)), '[]')
     FROM risk_kill_switches
    WHERE released_at IS NULL AND (scope = 'FIRM' OR account_id = $1 OR symbol = $2)) AS switches,
  (SELECT count(*) FROM risk_orders
    WHERE account_id = $1 AND placed_at > clock_timestamp() - interval '1 second') AS last_second,
  (SELECT count(*) FROM risk_orders
    WHERE account_id = $1 AND placed_at > clock_timestamp() - interval '1 minute') AS last_minute,
  (SELECT floor(extract(epoch FROM clock_timestamp() - max(placed_at)) * 1000)::bigint FROM risk_orders
    WHERE account_id = $1 AND symbol = $2 AND state <> 'RELEASED'
      AND placed_at > clock_timestamp() - interval '1 hour'
      AND side = $4 AND order_type = $5 AND price IS NOT DISTINCT FROM $6 AND quantity = $7) AS duplicate_age_ms,
  (SELECT quantity FROM risk_positions WHERE account_id = $1 AND symbol = $2) AS position,
  (SELECT coalesce(sum(open_quantity), 0) FROM risk_orders
    WHERE account_id = $1 AND currency = $3 AND symbol = $2 AND open_quantity > 0 AND side = 'BUY') AS open_buy,
  (SELECT coalesce(sum(open_quantity), 0) FROM risk_orders
    WHERE account_id = $1 AND currency = $3 AND symbol = $2 AND open_quantity > 0 AND side = 'SELL') AS open_sell,
  (SELECT coalesce(sum(open_minor), 0) FROM risk_orders
    WHERE account_id = $1 AND currency = $3 AND open_quantity > 0) AS open_minor,
  (SELECT coalesce(sum(abs(p.quantity::numeric) * s.price_minor), 0)
     FROM risk_positions p JOIN risk_symbol_prices s USING (symbol)
    WHERE p.account_id = $1 AND p.currency = $3) AS positions_minor,
  (SELECT price_minor FROM risk_symbol_prices WHERE symbol = $2 AND currency = $3) AS reference_minor`;

export async function preTradeInput(
  manager: EntityManager,
  config: Pick<RiskConfig, 'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA'>,
  order: PlacementOrder,
): Promise<RiskPolicyInput> {
  const currency: Currency = order.notional.currency;
  const [facts]: FactsRow[] = await manager.query(FACTS, [
    order.accountId,
    order.symbol,
    currency,
    order.side,
    order.orderType,
    order.price ?? null,
    order.quantity.toString(),
  ]);
  const amount = (minor: string) => formatMoney(money(currency, BigInt(minor)));
  return {
    order: {
      orderId: order.orderId,
      accountId: order.accountId,
      symbol: order.symbol,
      side: order.side,
      type: order.orderType,
      quantity: order.quantity.toString(),
      ...(order.price !== undefined ? { price: order.price } : {}),
      notional: { amount: formatMoney(order.notional), currency },
    },
    limits: policyLevels(facts.limits, currency, config),
    killSwitches: facts.switches.map((s) => ({
      scope: s.scope,
      ...(s.accountId ? { accountId: s.accountId } : {}),
      ...(s.symbol ? { symbol: s.symbol } : {}),
      reason: s.reason,
    })),
    // numeric sums come back as exact decimal strings without a fraction.
    exposure: {
      gross: amount((BigInt(facts.open_minor) + BigInt(facts.positions_minor)).toString()),
    },
    position: { net: facts.position ?? '0', openBuy: facts.open_buy, openSell: facts.open_sell },
    throttle: { lastSecond: facts.last_second, lastMinute: facts.last_minute },
    ...(facts.duplicate_age_ms !== null ? { duplicate: { ageMs: facts.duplicate_age_ms } } : {}),
    ...(facts.reference_minor !== null ? { referencePrice: amount(facts.reference_minor) } : {}),
  };
}
