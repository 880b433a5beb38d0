export * from './access-table';
export * from './authorization.guard';
export * from './authz-input';
export * from './authz.module';
export * from './denial-audit';
export * from './open-probes';
export * from './opa-client';
export * from './xfcc';
