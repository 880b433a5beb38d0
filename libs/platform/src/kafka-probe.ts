// Answers "is Kafka reachable?" for readiness, without ever crashing the service when it is not.
import { Admin, Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';

export class KafkaProbe {
  private admin: Admin | undefined;
  private readonly kafka: Kafka;

  constructor(brokers: string[], clientId: string, logger: Logger) {
    this.kafka = new Kafka({
      clientId,
      brokers,
      connectionTimeout: 1_000,
      requestTimeout: 2_000,
      retry: { retries: 0 },
      // A dead broker is a readiness answer, not something to log on every probe.
      logLevel: logLevel.NOTHING,
      logCreator: () => (entry) => logger.debug({ kafka: entry.log }, 'kafka probe'),
    });
  }

  async check(timeoutMs: number): Promise<void> {
    try {
      await withTimeout(this.describe(), timeoutMs, 'kafka did not answer in time');
    } catch (error) {
      // Drop the client so the next probe starts from a clean connection.
      const stale = this.admin;
      this.admin = undefined;
      await stale?.disconnect().catch(() => undefined);
      throw error;
    }
  }

  private async describe(): Promise<void> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    await this.admin.describeCluster();
  }

  async close(): Promise<void> {
    await this.admin?.disconnect().catch(() => undefined);
    this.admin = undefined;
  }
}

export async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
