import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('risk', [
  'outbox',
  'inbox',
  'tcc_barrier',
  'risk_limits',
  'risk_reservations',
]);
