// The clearing quotas are read and checked at start-up like every other variable.
import { loadConfig } from '@finance/platform';
import { settlementConfigSchema } from './config';

const env = {
  PORT: '3002',
  DATABASE_URL: 'postgres://u:p@localhost:5432/settlement',
  KAFKA_BROKERS: 'localhost:9092',
  OPA_URL: 'http://localhost:8181',
  MESH_MODE: 'true',
};

describe('settlement config', () => {
  it('defaults to 10,000,000 per account and 1,000,000,000 for the firm', () => {
    expect(loadConfig(settlementConfigSchema, env)).toMatchObject({
      SETTLEMENT_DEFAULT_CLEARING_QUOTA: '10000000',
      SETTLEMENT_FIRM_CLEARING_QUOTA: '1000000000',
    });
  });

  it('refuses to start with a quota that is not a whole amount, naming the variable', () => {
    expect(() =>
      loadConfig(settlementConfigSchema, { ...env, SETTLEMENT_FIRM_CLEARING_QUOTA: '-1' }),
    ).toThrow(
      'invalid configuration: SETTLEMENT_FIRM_CLEARING_QUOTA is invalid (must be a whole amount of at most 15 digits)',
    );
  });

  it('settles T+1 by default, with per-symbol periods and three failed cycles before unwinding', () => {
    expect(
      loadConfig(settlementConfigSchema, {
        ...env,
        SETTLEMENT_PERIOD_BY_SYMBOL: 'AAPL=T+0, 7203=T+2',
      }),
    ).toMatchObject({
      SETTLEMENT_PERIOD: 1,
      SETTLEMENT_PERIOD_BY_SYMBOL: { AAPL: 0, '7203': 2 },
      SETTLEMENT_MAX_FAILED_CYCLES: 3,
    });
  });

  it('refuses a malformed period, naming the variable and the item', () => {
    expect(() =>
      loadConfig(settlementConfigSchema, { ...env, SETTLEMENT_PERIOD_BY_SYMBOL: 'AAPL=T1' }),
    ).toThrow('SETTLEMENT_PERIOD_BY_SYMBOL');
    expect(() => loadConfig(settlementConfigSchema, { ...env, SETTLEMENT_PERIOD: 'T+x' })).toThrow(
      'SETTLEMENT_PERIOD is invalid (must be T+n with n a single digit, e.g. T+1)',
    );
  });
});
