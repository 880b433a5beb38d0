/** The SettlementCycles instance of the service (with its final-fail handler). */
export const SETTLEMENT_CYCLES = Symbol('SETTLEMENT_CYCLES');
