// What an @EventPattern handler on the inbox transport gets with @Ctx(): the open transaction.
import { BaseRpcContext } from '@nestjs/microservices';
import type { EntityManager } from 'typeorm';
import type { InboxContext } from './inbox-consumer';

export class InboxRpcContext extends BaseRpcContext<[InboxContext]> {
  constructor(context: InboxContext) {
    super([context]);
  }

  /** Writes through it commit together with the inbox record, or not at all. */
  get manager(): EntityManager {
    return this.args[0].manager;
  }

  getManager(): EntityManager {
    return this.args[0].manager;
  }

  getTopic(): string {
    return this.args[0].topic;
  }

  getPartition(): number {
    return this.args[0].partition;
  }

  getOffset(): string {
    return this.args[0].offset;
  }

  getHeaders(): Readonly<Record<string, string>> {
    return this.args[0].headers;
  }
}
