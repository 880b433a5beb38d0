// Order lifecycle events leave through the outbox in the transaction that changes the order; each
// carries the order's next sequence number, so a consumer can see gaps and order them per key.
import { MessageDefinition, SYSTEM_CATALOG } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import type { EntityManager } from 'typeorm';
import type { z } from 'zod';

/** Channel on which trading announces that an order reached an answer (accepted+booked, rejected, cancelled). */
export const ORDER_CHANNEL = 'trading_orders';

export async function publishOrderEvent<D extends MessageDefinition>(
  manager: EntityManager,
  topicPrefix: string,
  orderId: string,
  definition: D,
  data: z.input<D['schema']>,
  correlationId: string = orderId,
): Promise<void> {
  const [{ version }] = await manager.query(
    `WITH v AS (UPDATE orders SET version = version + 1, updated_at = clock_timestamp()
                 WHERE order_id = $1 RETURNING version)
     SELECT version FROM v`,
    [orderId],
  );
  const envelope = createEnvelope(definition, data, {
    producer: 'trading',
    aggregateId: orderId,
    aggregateSequence: Number(version),
    correlationId,
  });
  await enqueueOutbox(manager, [routeMessage(SYSTEM_CATALOG, envelope, topicPrefix)]);
}

/** Wakes whoever waits for this order (delivered when the transaction commits). */
export async function notifyOrder(manager: EntityManager, orderId: string): Promise<void> {
  await manager.query('SELECT pg_notify($1, $2)', [ORDER_CHANNEL, orderId]);
}
