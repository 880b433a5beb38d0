// The audit log's settings are read and checked at start-up like every other variable.
import { loadConfig } from '@finance/platform';
import { complianceConfigSchema } from './config';

const env = {
  PORT: '3004',
  DATABASE_URL: 'postgres://u:p@localhost:5432/compliance',
  KAFKA_BROKERS: 'localhost:9092',
  OPA_URL: 'http://localhost:8181',
  MESH_MODE: 'true',
};

describe('compliance config', () => {
  it('signs a checkpoint every minute by default, with an ephemeral key outside production', () => {
    expect(loadConfig(complianceConfigSchema, env)).toMatchObject({
      AUDIT_CHECKPOINT_INTERVAL_MS: 60_000,
      AUDIT_LOG_ORIGIN: 'finance-core/compliance/audit-log',
    });
    expect(loadConfig(complianceConfigSchema, env).AUDIT_SIGNING_KEY_FILE).toBeUndefined();
  });

  it('requires the signing key in production, naming it with every other problem', () => {
    expect(() => loadConfig(complianceConfigSchema, { ...env, NODE_ENV: 'production' })).toThrow(
      'invalid configuration: AUDIT_SIGNING_KEY_FILE is required (in production)',
    );
    expect(() =>
      loadConfig(complianceConfigSchema, {
        ...env,
        NODE_ENV: 'production',
        MESH_MODE: 'false',
        AUDIT_CHECKPOINT_INTERVAL_MS: '10',
      }),
    ).toThrow(
      'invalid configuration: AUDIT_CHECKPOINT_INTERVAL_MS is invalid (Too small: expected number to be >=100); ' +
        'TLS_CERT_FILE is required (unless MESH_MODE=true); TLS_KEY_FILE is required (unless MESH_MODE=true); ' +
        'TLS_CA_FILE is required (unless MESH_MODE=true); AUDIT_SIGNING_KEY_FILE is required (in production)',
    );
    expect(
      loadConfig(complianceConfigSchema, {
        ...env,
        NODE_ENV: 'production',
        AUDIT_SIGNING_KEY_FILE: '/run/secrets/audit.pem',
      }).AUDIT_SIGNING_KEY_FILE,
    ).toBe('/run/secrets/audit.pem');
  });
});
