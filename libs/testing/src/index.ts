export * from './test-stack';
export * from './service-process';
export * from './service-lifecycle';
export * from './policy';
export * from './opa-server';
export { localDir, repoRoot } from './paths';
export * from './waiting';
export * from './trading-session';
export * from './system';
