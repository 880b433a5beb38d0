export * from './bootstrap';
export * from './config';
export * from './database';
export * from './errors';
export * from './health';
export * from './kafka-probe';
export * from './logger';
export * from './problem-details';
