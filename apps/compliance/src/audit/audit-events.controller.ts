// Compliance consumes every message of the system: one handler for every type in the catalogue,
// so the inbox transport subscribes to every topic. Each appends the envelope in the consumer's
// transaction, which also records it in the inbox, so a redelivered message is not logged twice.
// The append happens as that transaction commits: one batch per run of messages, and the log's
// lock held only for it.
import { ALL_MESSAGES, Envelope } from '@finance/contracts';
import { AuditLogStore, inputFromEnvelope } from '@finance/audit-log';
import { INBOX_KAFKA_TRANSPORT, InboxRpcContext } from '@finance/messaging';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';

/** Every message type of the system; Nest registers one handler per pattern of the list. */
export const AUDITED_TYPES: readonly string[] = ALL_MESSAGES.map((message) => message.type);

@Controller()
export class AuditEventsController {
  constructor(private readonly store: AuditLogStore) {}

  // Queued in the consumer's transaction and appended, with the rest of its run, as it commits.
  @EventPattern([...AUDITED_TYPES], INBOX_KAFKA_TRANSPORT)
  async record(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    this.store.appendOnCommit(ctx.manager, [
      inputFromEnvelope(message, {
        topic: ctx.getTopic(),
        partition: ctx.getPartition(),
        offset: ctx.getOffset(),
      }),
    ]);
  }
}
