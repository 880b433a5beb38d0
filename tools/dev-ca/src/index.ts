// Public API of @finance/dev-ca: a local certificate authority issuing SPIFFE X.509-SVIDs.
export * from './dev-ca';
