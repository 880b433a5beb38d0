import { MessageCatalog, MessageOf } from './catalog';
import { OPERATIONS_MESSAGES } from './operations';
import { COMPLIANCE_EVENTS, RISK_EVENTS, SETTLEMENT_EVENTS } from './others';
import { TCC_MESSAGES } from './tcc';
import { TRADING_EVENTS } from './trading';

export * from './catalog';
export * as fields from './fields';
export * from './operations';
export * from './others';
export * from './placement';
export * from './tcc';
export * from './trading';

export const ALL_MESSAGES = [
  ...TRADING_EVENTS,
  ...TCC_MESSAGES,
  ...RISK_EVENTS,
  ...SETTLEMENT_EVENTS,
  ...COMPLIANCE_EVENTS,
  ...OPERATIONS_MESSAGES,
] as const;

/** Every message of the system as a discriminated union on `type`. */
export type SystemMessage = MessageOf<(typeof ALL_MESSAGES)[number]>;

export const SYSTEM_CATALOG = new MessageCatalog<SystemMessage>(ALL_MESSAGES);
