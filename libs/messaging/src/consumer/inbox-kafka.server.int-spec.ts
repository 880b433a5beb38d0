// A Nest microservice on the inbox transport: one effect per event, and app.close() drains.
import { Envelope } from '@finance/contracts';
import { createLogger } from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MicroserviceOptions, Payload } from '@nestjs/microservices';
import type { DataSource } from 'typeorm';
import { createKafka, HEADERS } from '../kafka';
import {
  committedTotal,
  credited,
  effectCounts,
  envelopeRecord,
  migratedDataSource,
  produce,
  readTopic,
  testMessages,
  waitFor,
  provisionTopic,
} from '../../test/consumer/support';
import { PermanentMessageError } from './errors';
import { InboxConsumer } from './inbox-consumer';
import { InboxExceptionFilter } from './inbox-exception.filter';
import { InboxKafkaServer } from './inbox-kafka.server';
import { InboxRpcContext } from './inbox-rpc.context';

const UNLUCKY = 13;
const SLOW = 99;
const slowEntered: { signal: () => void } = { signal: () => undefined };

@Controller()
class CreditsController {
  @EventPattern('TestCredited')
  async credited(
    @Payload() message: Envelope<'TestCredited', { account: string; amount: number }>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    if (message.data.amount === UNLUCKY) throw new PermanentMessageError('unlucky amount');
    if (message.data.amount === SLOW) {
      slowEntered.signal();
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    await ctx.manager.query('INSERT INTO effects (event_id, note) VALUES ($1, $2)', [
      message.metadata.eventId,
      `nest ${ctx.getTopic()}#${ctx.getOffset()}`,
    ]);
  }
}

@Module({ controllers: [CreditsController] })
class CreditsModule {}

describe('InboxKafkaServer', () => {
  let app: INestMicroservice | undefined;
  let dataSource: DataSource | undefined;

  afterAll(async () => {
    await app?.close();
    await dataSource?.destroy();
  });

  it('dispatches by message type inside the inbox transaction, once per event, and drains on close', async () => {
    const stack = testStack();
    const { definition, topic } = await provisionTopic('nest', 2);
    dataSource = await migratedDataSource((await createTestDatabase('inbox_nest')).url);
    const logger = createLogger('inbox-nest-test', process.env.TEST_LOG_LEVEL ?? 'silent');
    const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: 'inbox-nest', logger });
    const messages = testMessages(definition);
    const name = `inbox-nest-${Date.now().toString(36)}`;

    const server = new InboxKafkaServer({
      name,
      kafka,
      dataSource,
      logger,
      catalog: messages.catalog,
      topicPrefix: stack.topicPrefix,
      retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
    });
    expect(() => server.subscribedTopics()).toThrow(/no @EventPattern handlers/);
    app = await NestFactory.createMicroservice<MicroserviceOptions>(CreditsModule, {
      strategy: server,
      logger: false,
    });
    app.useGlobalFilters(new InboxExceptionFilter());
    await app.listen();
    expect(server.subscribedTopics()).toEqual([topic]);
    expect(server.unwrap<InboxConsumer>().status).toBe('running');

    const twice = credited(messages, { account: 'acct-1', amount: 1 });
    const other = credited(messages, { account: 'acct-2', amount: 2 });
    const unlucky = credited(messages, { account: 'acct-1', amount: UNLUCKY });
    // A type of the catalog on the same topic that this service has no handler for.
    const notOurs = {
      type: 'TestParkable',
      data: { note: 'for someone else' },
      metadata: {
        ...other.metadata,
        type: 'TestParkable',
        eventId: twice.metadata.eventId.replace(/.{4}$/, 'beef'),
      },
    };
    await produce(kafka, topic, [
      envelopeRecord(twice),
      envelopeRecord(other),
      envelopeRecord(twice),
      envelopeRecord(notOurs),
      envelopeRecord(unlucky),
    ]);
    await waitFor(
      'five offsets',
      () => committedTotal(kafka, name, topic),
      (n) => n === 5,
    );
    await produce(kafka, topic, [envelopeRecord(twice)]); // a later redelivery, too
    await waitFor(
      'six offsets',
      () => committedTotal(kafka, name, topic),
      (n) => n === 6,
    );

    expect(await effectCounts(dataSource)).toEqual({ rows: 2, distinct: 2 });
    const notes = (await dataSource.query('SELECT note FROM effects')) as Array<{ note: string }>;
    for (const { note } of notes) expect(note).toMatch(new RegExp(`^nest ${topic}#\\d+$`));
    const inbox = (await dataSource.query(
      'SELECT event_id FROM inbox ORDER BY event_id',
    )) as Array<{
      event_id: string;
    }>;
    expect(inbox.map((r) => r.event_id).sort()).toEqual(
      [twice, other, notOurs].map((e) => e.metadata.eventId).sort(),
    );
    // The exception filter keeps the handler's own error, so it is dead-lettered at once.
    const [dead] = await readTopic(kafka, `${topic}.dlq`, 1);
    expect(dead.headers[HEADERS.eventId]).toBe(unlucky.metadata.eventId);
    expect(dead.headers[HEADERS.error]).toBe('PermanentMessageError: unlucky amount');

    // close() while a handler is in flight: it completes and its offset is committed.
    const entered = new Promise<void>((resolve) => (slowEntered.signal = resolve));
    const slow = credited(messages, { account: 'acct-3', amount: SLOW });
    await produce(kafka, topic, [envelopeRecord(slow)]);
    await entered;
    await app.close();
    app = undefined;
    expect(await effectCounts(dataSource)).toEqual({ rows: 3, distinct: 3 });
    expect(await committedTotal(kafka, name, topic)).toBe(7);
  });
});
