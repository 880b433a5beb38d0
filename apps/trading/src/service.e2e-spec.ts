import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('trading', ['outbox', 'inbox']);
