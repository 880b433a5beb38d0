// Wires the authorization guard into a service: import `AuthzModule.forService()` in its module.
import { AUTHORIZATION_GUARD, BaseConfig, SERVICE_CONFIG } from '@finance/platform';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthorizationGuard } from './authorization.guard';
import { DenialAudit } from './denial-audit';
import { NotFoundController } from './not-found.controller';
import { OpaClient } from './opa-client';

@Module({})
export class AuthzModule {
  static forService(): DynamicModule {
    return {
      module: AuthzModule,
      controllers: [NotFoundController],
      providers: [
        {
          provide: OpaClient,
          inject: [SERVICE_CONFIG],
          useFactory: (config: BaseConfig) =>
            new OpaClient({ url: config.OPA_URL, timeoutMs: config.OPA_TIMEOUT_MS }),
        },
        DenialAudit,
        AuthorizationGuard,
        // Global: every controller of the service, platform's health and metrics included.
        { provide: APP_GUARD, useExisting: AuthorizationGuard },
        { provide: AUTHORIZATION_GUARD, useExisting: AuthorizationGuard },
      ],
    };
  }
}
