// Helpers for tests that wait on real components: poll until a condition holds, produce raw records.
import { Kafka, Message, Partitioners } from 'kafkajs';

/** Polls `probe` until `done` accepts its value; fails with the last value seen. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!done(last)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await probe();
  }
  return last;
}

/** Produces records exactly as given (malformed ones included), keyed like the relay does. */
export async function produceRecords(
  kafka: Kafka,
  topic: string,
  records: Message[],
): Promise<void> {
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: records });
  } finally {
    await producer.disconnect();
  }
}
