export * from './documents';
export * from './export-format';
export * from './record';
export * from './store/audit-log.migration';
export * from './store/audit-log.store';
export * from './verify/audit-verification';
export * from './verify/export-verifier';
