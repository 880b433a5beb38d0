import { describeServiceLifecycle } from '@finance/testing';

describeServiceLifecycle('settlement', ['outbox', 'inbox']);
