// A migrated database for the event store's integration tests (outbox tables included).
import { MessagingTables1763769600000 } from '@finance/messaging';
import { openDatabase } from '@finance/platform';
import type { DataSource } from 'typeorm';
import { EventStoreTables1763856000000 } from '../migrations/event-store-tables';

export async function openMigratedDatabase(url: string, poolSize = 10): Promise<DataSource> {
  return openDatabase({
    url,
    applicationName: 'event-store-tests',
    poolSize,
    migrations: [MessagingTables1763769600000, EventStoreTables1763856000000],
  });
}

/** Resolves every waiter once `parties` of them have arrived, so racers start together. */
export function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let release: () => void = () => undefined;
  const open = new Promise<void>((resolve) => (release = resolve));
  return () => {
    arrived++;
    if (arrived === parties) release();
    return open;
  };
}
