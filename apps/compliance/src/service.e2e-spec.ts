import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('compliance', ['outbox', 'inbox']);
