export * from './canonical-json';
export * from './checkpoint';
export * from './hashing';
export * from './proofs';
export * from './tree';
export * from './verify';
