// Risk's events go out through the outbox in the transaction of the change they record; their
// aggregate sequences come from one counter table.
import { SYSTEM_CATALOG } from '@finance/contracts';
import type { MessageDefinition } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import type { EntityManager } from 'typeorm';
import type { z } from 'zod';

export async function publish<D extends MessageDefinition>(
  manager: EntityManager,
  topicPrefix: string,
  definition: D,
  data: z.input<D['schema']>,
  meta: { aggregateId: string; correlationId: string; causationId?: string | null },
): Promise<void> {
  const [{ revision }]: Array<{ revision: string }> = await manager.query(
    `INSERT INTO risk_event_sequences (aggregate_type, aggregate_id, revision) VALUES ($1, $2, 1)
     ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET revision = risk_event_sequences.revision + 1
     RETURNING revision`,
    [definition.aggregateType, meta.aggregateId],
  );
  await enqueueOutbox(manager, [
    routeMessage(
      SYSTEM_CATALOG,
      createEnvelope(definition, data, {
        producer: 'risk',
        aggregateId: meta.aggregateId,
        aggregateSequence: Number(revision),
        correlationId: meta.correlationId,
        causationId: meta.causationId ?? null,
      }),
      topicPrefix,
    ),
  ]);
}
