import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('risk', [
  'outbox',
  'inbox',
  'tcc_barrier',
  'risk_limits',
  'risk_reservations',
  'risk_limit_values',
  'risk_orders',
  'risk_trades',
  'risk_positions',
  'risk_kill_switches',
  'risk_limit_breaches',
  'risk_alerts',
]);
