export * from './envelopes';
export * from './kafka';
export * from './migrations/messaging-tables';
export * from './outbox/outbox';
export * from './outbox/relay';
export * from './nest/messaging.module';
export * from './consumer';
