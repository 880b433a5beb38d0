import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('risk', ['outbox', 'inbox']);
