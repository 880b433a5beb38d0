// One LISTEN connection for trading: order answers (a waiting HTTP request wakes when its order was
// accepted and booked, rejected or cancelled) and new work for the matching engine.
import { SERVICE_LOGGER } from '@finance/platform';
import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import type { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';
import { ORDER_CHANNEL } from './order-events';

export const MATCHING_CHANNEL = 'trading_matching';

@Injectable()
export class OrderNotifications implements OnModuleInit, OnApplicationShutdown {
  private client: Client | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly workListeners = new Set<() => void>();

  constructor(
    private readonly db: DataSource,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    const url = (this.db.options as PostgresConnectionOptions).url;
    const client = new Client({ connectionString: url, application_name: 'trading-listener' });
    await client.connect();
    client.on('notification', (n) => {
      if (n.channel === MATCHING_CHANNEL) this.workListeners.forEach((wake) => wake());
      else this.waiters.get(n.payload ?? '')?.forEach((wake) => wake());
    });
    client.on('error', (error) =>
      this.logger.warn({ err: error }, 'trading listener connection lost'),
    );
    await client.query(`LISTEN ${ORDER_CHANNEL}`);
    await client.query(`LISTEN ${MATCHING_CHANNEL}`);
    this.client = client;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client?.end().catch(() => undefined);
  }

  onWork(wake: () => void): () => void {
    this.workListeners.add(wake);
    return () => this.workListeners.delete(wake);
  }

  /**
   * Reads the order until `done` says it reached an answer, re-reading on each notification, or
   * gives the last reading when `timeoutMs` passes.
   */
  async waitFor<T>(
    orderId: string,
    read: () => Promise<T>,
    done: (value: T) => boolean,
    timeoutMs: number,
  ): Promise<{ value: T; timedOut: boolean }> {
    let wake: () => void = () => undefined;
    const set = this.waiters.get(orderId) ?? new Set();
    this.waiters.set(orderId, set);
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const signalled = new Promise<void>((resolve) => {
          wake = resolve;
          set.add(wake);
        });
        const value = await read();
        if (done(value)) return { value, timedOut: false };
        const left = deadline - Date.now();
        if (left <= 0) return { value, timedOut: true };
        // The periodic re-read covers a notification lost with the listener connection.
        await Promise.race([signalled, new Promise((r) => setTimeout(r, Math.min(left, 1_000)))]);
        set.delete(wake);
      }
    } finally {
      set.delete(wake);
      if (set.size === 0) this.waiters.delete(orderId);
    }
  }
}
