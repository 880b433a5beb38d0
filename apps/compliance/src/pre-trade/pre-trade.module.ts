// Compliance's pre-trade check: the compliance-check branch of order placement and the OPA client it
// (and surveillance) ask. ComplianceCheckBranch is exported for the TCC participant.
import { BaseConfig, SERVICE_CONFIG } from '@finance/platform';
import { Module } from '@nestjs/common';
import { ComplianceCheckBranch } from './compliance-check.branch';
import { COMPLIANCE_POLICY, CompliancePolicy } from './compliance-policy';

@Module({
  providers: [
    ComplianceCheckBranch,
    {
      provide: COMPLIANCE_POLICY,
      inject: [SERVICE_CONFIG],
      useFactory: (config: BaseConfig) =>
        new CompliancePolicy(config.OPA_URL, config.OPA_TIMEOUT_MS),
    },
  ],
  exports: [ComplianceCheckBranch, COMPLIANCE_POLICY],
})
export class PreTradeModule {}
