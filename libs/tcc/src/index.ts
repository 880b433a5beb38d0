export * from './coordinator/coordinator';
export * from './errors';
export * from './migrations/tcc-tables';
export * from './participant/participant';
export * from './admin/tcc-admin';
export * from './nest/tcc.modules';
export * from './batch';
