import { SYSTEM_CATALOG, TccReply, TccTry, type Envelope } from '@finance/contracts';
import { createEnvelope, PermanentMessageError, routeMessage } from '@finance/messaging';
import { propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  elementTrace,
  MAX_BATCH_ELEMENTS,
  packCommands,
  packReplies,
  unpackCommands,
  unpackReplies,
} from './batch';

const GTID = '01a20270-ee1f-73df-93f3-d35b138f9515';
const options = { producer: 'trading' as const, catalog: SYSTEM_CATALOG, topicPrefix: 'p.' };

function tryCommand(participant: 'trading' | 'risk', branchId: string) {
  const envelope = createEnvelope(
    TccTry,
    {
      globalTransactionId: GTID,
      branchId,
      participant,
      resource: 'quota',
      deadline: '2026-11-22T10:00:00.000Z',
      payload: { n: branchId },
    },
    { producer: 'trading', aggregateId: GTID, aggregateSequence: 1, correlationId: 'order-1' },
  );
  return routeMessage(SYSTEM_CATALOG, envelope, 'p.');
}

function reply(branchId: string) {
  const envelope = createEnvelope(
    TccReply,
    {
      globalTransactionId: GTID,
      branchId,
      participant: 'risk',
      resource: 'quota',
      phase: 'TRY',
      outcome: 'SUCCEEDED',
    },
    { producer: 'risk', aggregateId: GTID, aggregateSequence: 1, correlationId: 'order-1' },
  );
  return routeMessage(SYSTEM_CATALOG, envelope, 'p.');
}

// What a consumer gets: the record's JSON, decoded again.
const overTheWire = (envelope: Envelope): Envelope => {
  const decoded = SYSTEM_CATALOG.decode(JSON.parse(JSON.stringify(envelope)));
  if (decoded.status !== 'ok') throw new Error(decoded.status);
  return decoded.message;
};

describe('TCC command and reply batches', () => {
  it('packs one batch per participant, keeps order and leaves a lone command as it is', () => {
    const commands = [
      tryCommand('risk', 'r1'),
      tryCommand('trading', 't1'),
      tryCommand('risk', 'r2'),
      tryCommand('risk', 'r3'),
    ];
    const packed = packCommands(commands, options);
    expect(packed.map((m) => [m.topic, m.envelope.type])).toEqual([
      ['p.tcc.commands', 'TccCommandBatch'],
      ['p.tcc.commands', 'TccTry'],
    ]);
    expect(packed[1]).toBe(commands[1]);
    const elements = unpackCommands(overTheWire(packed[0].envelope), SYSTEM_CATALOG);
    expect(elements.map((e) => e.metadata.eventId)).toEqual(
      [commands[0], commands[2], commands[3]].map((m) => m.envelope.metadata.eventId),
    );
    expect(elements.map((e) => (e.data as { branchId: string }).branchId)).toEqual([
      'r1',
      'r2',
      'r3',
    ]);
  });

  it(`cuts batches at ${MAX_BATCH_ELEMENTS} elements`, () => {
    const commands = Array.from({ length: MAX_BATCH_ELEMENTS + 2 }, (_, i) =>
      tryCommand('risk', `r${i}`),
    );
    const packed = packCommands(commands, options);
    expect(packed.map((m) => (m.envelope.data as { commands: unknown[] }).commands.length)).toEqual(
      [MAX_BATCH_ELEMENTS, 2],
    );
  });

  it('packs replies and reads them back', () => {
    const replies = [reply('a'), reply('b')];
    const [batch] = packReplies(replies, 'risk', { ...options, producer: 'risk' });
    expect(batch.topic).toBe('p.tcc.replies');
    expect(
      unpackReplies(overTheWire(batch.envelope), SYSTEM_CATALOG).map((e) => e.metadata.eventId),
    ).toEqual(replies.map((r) => r.envelope.metadata.eventId));
  });

  it('refuses a batch holding something other than its kind of element, naming the element', () => {
    const [batch] = packCommands([tryCommand('risk', 'r1'), tryCommand('risk', 'r2')], options);
    const wire = JSON.parse(JSON.stringify(batch.envelope));
    wire.data.commands[1] = JSON.parse(JSON.stringify(reply('x').envelope));
    expect(() => unpackCommands(overTheWire(wire), SYSTEM_CATALOG)).toThrow(PermanentMessageError);
    expect(() => unpackCommands(overTheWire(wire), SYSTEM_CATALOG)).toThrow(
      /element 1 is a TccReply/,
    );
    wire.data.commands[1] = { type: 'TccTry', data: {} };
    expect(() => unpackCommands(overTheWire(wire), SYSTEM_CATALOG)).toThrow(/element 1 is invalid/);
  });

  it("gives each element the trace it was created in, else the batch's", () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      expectTraces();
    } finally {
      propagation.disable();
    }
  });
});

// With the W3C propagator the services' tracing preload registers.
function expectTraces(): void {
  const fallback = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    traceFlags: 1,
  });
  const plain = tryCommand('risk', 'r1').envelope;
  expect(elementTrace(plain, fallback)).toBe(fallback);
  const traced = {
    ...plain,
    metadata: {
      ...plain.metadata,
      traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`,
    },
  };
  expect(trace.getSpanContext(elementTrace(traced, fallback))?.traceId).toBe('c'.repeat(32));
}
