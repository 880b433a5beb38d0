export * from './services';
export * from './topics';
