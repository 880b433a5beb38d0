// Which topics the Nest inbox transport subscribes to, decided from its handlers and the catalog.
import { defineMessage, MessageCatalog, TopicDefinition } from '@finance/contracts';
import { z } from 'zod';
import { InboxKafkaServer, InboxKafkaServerOptions } from './inbox-kafka.server';
import { InboxRpcContext } from './inbox-rpc.context';

function topic(name: string): TopicDefinition {
  return { name, partitions: 1, retentionMs: 1, key: 'aggregateId', description: name };
}
const A = defineMessage({
  type: 'A',
  aggregateType: 'x',
  topic: topic('a.events'),
  schema: z.object({}),
});
const B = defineMessage({
  type: 'B',
  aggregateType: 'x',
  topic: topic('a.events'),
  schema: z.object({}),
});
const C = defineMessage({
  type: 'C',
  aggregateType: 'x',
  topic: topic('c.events'),
  schema: z.object({}),
});
const catalog = new MessageCatalog([A, B, C]);

// Nothing connects before listen(), so Kafka, the database and the logger are not needed here.
function server(): InboxKafkaServer {
  return new InboxKafkaServer({
    name: 'svc',
    catalog,
    topicPrefix: 't-1.',
  } as InboxKafkaServerOptions);
}

const noop = async () => undefined;

describe('InboxKafkaServer.subscribedTopics', () => {
  it('subscribes once to each topic carrying a handled type, under the prefix', () => {
    const s = server();
    s.addHandler('A', noop, true);
    s.addHandler('B', noop, true);
    s.addHandler('C', noop, true);
    expect(s.subscribedTopics()).toEqual(['t-1.a.events', 't-1.c.events']);
  });

  it('refuses request-response handlers, unknown types and an empty service', () => {
    const reply = server();
    reply.addHandler('A', noop, false);
    expect(() => reply.subscribedTopics()).toThrow(/@EventPattern handlers only/);
    const unknown = server();
    unknown.addHandler('Z', noop, true);
    expect(() => unknown.subscribedTopics()).toThrow(/@EventPattern\('Z'\) is not a message type/);
    expect(() => server().subscribedTopics()).toThrow(/no @EventPattern handlers/);
  });

  it('is not unwrappable before listen', () => {
    expect(() => server().unwrap()).toThrow(/not listening/);
  });
});

describe('InboxRpcContext', () => {
  it('exposes the transaction and where the message came from', () => {
    const manager = { marker: 'tx' } as never;
    const ctx = new InboxRpcContext({
      manager,
      topic: 't',
      partition: 3,
      offset: '17',
      headers: { 'event-type': 'A' },
    });
    expect(ctx.manager).toBe(manager);
    expect(ctx.getManager()).toBe(manager);
    expect([ctx.getTopic(), ctx.getPartition(), ctx.getOffset()]).toEqual(['t', 3, '17']);
    expect(ctx.getHeaders()).toEqual({ 'event-type': 'A' });
  });
});

describe('InboxKafkaServer run handlers', () => {
  it('gives consecutive messages of a run handler to it together, in order, and others to @EventPattern', async () => {
    const s = server();
    const calls: string[] = [];
    s.addHandler(
      'A',
      async (m: { metadata: { eventId: string } }) => {
        calls.push(`A:${m.metadata.eventId}`);
      },
      true,
    );
    s.addRunHandler(['B', 'C'], async (entries) => {
      calls.push(`run:${entries.map((e) => e.message.metadata.eventId).join(',')}`);
    });
    const entry = (type: string, eventId: string) =>
      ({ message: { type, metadata: { eventId } }, ctx: {}, trace: {} }) as never;
    const dispatchRun = (
      s as unknown as { dispatchRun(entries: unknown[]): Promise<void> }
    ).dispatchRun.bind(s);
    await dispatchRun([entry('B', '1'), entry('C', '2'), entry('A', '3'), entry('B', '4')]);
    expect(calls).toEqual(['run:1,2', 'A:3', 'run:4']);
  });
});
