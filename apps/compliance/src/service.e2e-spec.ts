import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('compliance', [
  'outbox',
  'inbox',
  'audit_entries',
  'audit_leaves',
  'audit_tree_nodes',
  'audit_tree_head',
  'audit_checkpoints',
  'audit_signing_keys',
  'compliance_alerts',
]);
