// When a trade settles: its trade date (UTC) plus the symbol's settlement period in business days,
// Saturdays and Sundays not counting. Exchange holidays are not modelled.

/** The date `days` business days after `tradeDate` (both YYYY-MM-DD); 0 is the trade date itself. */
export function addBusinessDays(tradeDate: string, days: number): string {
  const date = new Date(`${tradeDate}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) throw new RangeError(`not a date: ${tradeDate}`);
  let left = days;
  while (left > 0) {
    date.setUTCDate(date.getUTCDate() + 1);
    const weekday = date.getUTCDay();
    if (weekday !== 0 && weekday !== 6) left -= 1;
  }
  return date.toISOString().slice(0, 10);
}

export function settlementDate(
  executedAt: string,
  symbol: string,
  periods: { SETTLEMENT_PERIOD: number; SETTLEMENT_PERIOD_BY_SYMBOL: Record<string, number> },
): string {
  const days = periods.SETTLEMENT_PERIOD_BY_SYMBOL[symbol] ?? periods.SETTLEMENT_PERIOD;
  return addBusinessDays(executedAt.slice(0, 10), days);
}
