// The risk defaults are read and checked at start-up like every other variable.
import { loadConfig } from '@finance/platform';
import { riskConfigSchema } from './config';

const env = {
  PORT: '3003',
  DATABASE_URL: 'postgres://u:p@localhost:5432/risk',
  KAFKA_BROKERS: 'localhost:9092',
  OPA_URL: 'http://localhost:8181',
  MESH_MODE: 'true',
};

describe('risk config', () => {
  it('defaults to a 1,000,000 max order value and a 5,000,000 quota', () => {
    expect(loadConfig(riskConfigSchema, env)).toMatchObject({
      RISK_DEFAULT_MAX_ORDER_VALUE: '1000000',
      RISK_DEFAULT_QUOTA: '5000000',
    });
  });

  it('evaluates the policy in-process and runs the breakers with the seed values by default', () => {
    expect(loadConfig(riskConfigSchema, env)).toMatchObject({
      RISK_POLICY_ENGINE: 'wasm',
      RISK_PRICE_BAND_PERCENT: '5',
      RISK_PRICE_BAND_WINDOW_SECONDS: 60,
      RISK_REJECTION_BURST_COUNT: 20,
      RISK_LARGE_TRADE_NOTIONAL: '1000000',
      RISK_LARGE_TRADE_COUNT: 3,
      RISK_LARGE_TRADE_WINDOW_SECONDS: 10,
    });
  });

  it('refuses to start with an unknown policy engine or a band that is not a percentage', () => {
    expect(() =>
      loadConfig(riskConfigSchema, {
        ...env,
        RISK_POLICY_ENGINE: 'remote',
        RISK_PRICE_BAND_PERCENT: '5%',
      }),
    ).toThrow(/RISK_POLICY_ENGINE is invalid.*RISK_PRICE_BAND_PERCENT is invalid/);
  });

  it('refuses to start with a default that is not a whole amount, naming the variable', () => {
    expect(() => loadConfig(riskConfigSchema, { ...env, RISK_DEFAULT_QUOTA: '1.5' })).toThrow(
      'invalid configuration: RISK_DEFAULT_QUOTA is invalid (must be a whole amount of at most 15 digits)',
    );
  });
});
