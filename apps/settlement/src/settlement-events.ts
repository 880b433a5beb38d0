// Settlement's events about trades go out through the outbox in the transaction of the change they
// record. A trade's events are numbered by its obligation's version, so consumers see them in order.
import { SYSTEM_CATALOG } from '@finance/contracts';
import type { MessageDefinition } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import type { EntityManager } from 'typeorm';
import type { z } from 'zod';

const BATCH = 5_000;

export async function publishTradeEvents<D extends MessageDefinition>(
  manager: EntityManager,
  topicPrefix: string,
  definition: D,
  events: ReadonlyArray<{ tradeId: string; data: z.input<D['schema']> }>,
  correlationId: string,
): Promise<void> {
  for (let start = 0; start < events.length; start += BATCH) {
    const batch = events.slice(start, start + BATCH);
    const versions: Array<{ trade_id: string; version: number }> = await manager.query(
      `WITH u AS (
         UPDATE settlement_obligations SET version = version + 1
          WHERE trade_id = ANY($1) RETURNING trade_id, version)
       SELECT * FROM u`,
      [batch.map((e) => e.tradeId)],
    );
    const versionOf = new Map(versions.map((v) => [v.trade_id, v.version]));
    await enqueueOutbox(
      manager,
      batch.map((event) =>
        routeMessage(
          SYSTEM_CATALOG,
          createEnvelope(definition, event.data, {
            producer: 'settlement',
            aggregateId: event.tradeId,
            aggregateSequence: versionOf.get(event.tradeId)!,
            correlationId,
            causationId: null,
          }),
          topicPrefix,
        ),
      ),
    );
  }
}
