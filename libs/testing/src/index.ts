export * from './test-stack';
export * from './service-process';
export * from './service-lifecycle';
export { localDir, repoRoot } from './paths';
