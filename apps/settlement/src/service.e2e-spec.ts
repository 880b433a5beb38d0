import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('settlement', [
  'outbox',
  'inbox',
  'tcc_barrier',
  'clearing_quota',
  'clearing_firm_quota',
  'clearing_reservations',
]);
