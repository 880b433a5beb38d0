// The risk-quota branch of order placement with the pre-trade policy it asks, and the limits API
// behind it. RiskQuotaBranch is exported for the TCC participant the service registers for
// resource `risk-quota`.
import { BaseConfig, SERVICE_CONFIG } from '@finance/platform';
import { Module } from '@nestjs/common';
import type { RiskConfig } from '../config';
import { LimitsController } from '../limits/limits.controller';
import { RISK_POLICY, SidecarRiskPolicy, WasmRiskPolicy } from '../pre-trade/risk-policy';
import { RiskQuotaBranch } from './risk-quota.branch';

@Module({
  controllers: [LimitsController],
  providers: [
    RiskQuotaBranch,
    {
      provide: RISK_POLICY,
      inject: [SERVICE_CONFIG],
      useFactory: (config: BaseConfig & Partial<Pick<RiskConfig, 'RISK_POLICY_ENGINE'>>) =>
        config.RISK_POLICY_ENGINE === 'sidecar'
          ? new SidecarRiskPolicy(config.OPA_URL, config.OPA_TIMEOUT_MS)
          : new WasmRiskPolicy(),
    },
  ],
  exports: [RiskQuotaBranch, RISK_POLICY],
})
export class RiskQuotaModule {}
