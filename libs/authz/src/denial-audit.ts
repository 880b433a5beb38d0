// Every refused request becomes an AuthorizationDenied event, written to the service's outbox in its
// own transaction so compliance receives it exactly like any other event.
import { AuthorizationDenied, SYSTEM_CATALOG, uuidv7 } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import {
  BaseConfig,
  SERVICE_CONFIG,
  SERVICE_IDENTITY,
  SERVICE_LOGGER,
  ServiceIdentity,
} from '@finance/platform';
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { authzAuditFailures } from './authz-metrics';

export interface Denial {
  principal: string | null;
  method: string;
  /** Path without the query string, which may carry tokens. */
  path: string;
  reason: string;
  status: 403 | 503;
  /** The request's x-request-id, or OPA's decision id, so the event leads to the decision log. */
  correlationId?: string;
}

const MAX_PATH = 2048;
const MAX_REASON = 1000;

@Injectable()
export class DenialAudit {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
    @Inject(SERVICE_IDENTITY) private readonly identity: ServiceIdentity,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  /** Never throws: the request is refused whether or not its audit event could be written. */
  async record(denial: Denial): Promise<void> {
    try {
      const aggregateId = uuidv7();
      const envelope = createEnvelope(
        AuthorizationDenied,
        {
          service: this.identity.service,
          principal: denial.principal,
          method: denial.method,
          path: denial.path.slice(0, MAX_PATH) || '/',
          reason: denial.reason.slice(0, MAX_REASON),
          status: denial.status,
        },
        {
          producer: this.identity.service,
          aggregateId,
          aggregateSequence: 1,
          correlationId: denial.correlationId ?? aggregateId,
          causationId: null,
        },
      );
      const message = routeMessage(SYSTEM_CATALOG, envelope, this.config.KAFKA_TOPIC_PREFIX);
      await this.dataSource.transaction((manager) => enqueueOutbox(manager, [message]));
    } catch (error) {
      authzAuditFailures.inc();
      this.logger.error({ err: error, denial }, 'could not record AuthorizationDenied');
    }
  }
}
