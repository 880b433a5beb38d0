// The compliance service as its own process (mutual TLS, OPA, Kafka, PostgreSQL): it records an
// event published on the bus, signs a checkpoint with a key it never prints, and serves an export
// and a proof that the offline verifier accepts.
import { verifyAudit, verifyExportText, wantedFromExport } from '@finance/audit-log';
import { RiskLimitChanged, SYSTEM_CATALOG } from '@finance/contracts';
import {
  canonicalJson,
  leafHash,
  parseHash,
  publicKeyFromPem,
  verifyInclusion,
} from '@finance/merkle';
import { createEnvelope, createKafka, kafkaHeaders, routeMessage } from '@finance/messaging';
import { createLogger } from '@finance/platform';
import {
  createTestDatabase,
  freePort,
  launchService,
  produceRecords,
  ServiceProcess,
  testCertificates,
  testStack,
  waitFor,
  waitUntilReady,
} from '@finance/testing';

describe('compliance audit log, end to end', () => {
  let service: ServiceProcess | undefined;
  afterAll(async () => {
    await service?.stop();
  });

  it('records a published event and serves a checkpoint, an export and a proof that verify offline', async () => {
    const stack = testStack();
    const db = await createTestDatabase('compliance_audit_e2e');
    service = launchService('compliance', {
      port: await freePort(),
      env: {
        DATABASE_URL: db.url,
        KAFKA_BROKERS: stack.kafkaBrokers.join(','),
        KAFKA_TOPIC_PREFIX: stack.topicPrefix,
        OPA_URL: stack.opaUrl,
        OPA_TIMEOUT_MS: '5000',
        AUDIT_CHECKPOINT_INTERVAL_MS: '300',
      },
      certificates: await testCertificates(),
    });
    await waitUntilReady(service);

    const event = createEnvelope(
      RiskLimitChanged,
      { scope: 'FIRM', limit: 'gross-exposure:USD', value: '1000000.00', changedBy: 'officer' },
      { producer: 'risk', aggregateId: 'FIRM', aggregateSequence: 1, correlationId: 'e2e' },
    );
    const kafka = createKafka({
      brokers: stack.kafkaBrokers,
      clientId: 'compliance-audit-e2e',
      logger: createLogger('compliance-audit-e2e', 'silent'),
    });
    const routed = routeMessage(SYSTEM_CATALOG, event, stack.topicPrefix);
    await produceRecords(kafka, routed.topic, [
      { key: routed.key, value: JSON.stringify(event), headers: kafkaHeaders(event) },
    ]);

    // compliance-service may read everything it serves; that is who asks here.
    const get = async <T>(path: string) => {
      const response = await service!.request(path, { as: 'compliance-service' });
      return { status: response.status, body: response.body, json: () => response.json<T>() };
    };
    const exportText = async (size: number) =>
      (await get(`/compliance/audit/entries?checkpoint=${size}`)).body;
    // A checkpoint that covers the event (other tests of this run may publish too).
    const checkpoint = await waitFor(
      'a checkpoint covering the event',
      async () => {
        const latest = await get<{ treeSize: number; rootHash: string; keyId: string }>(
          '/compliance/audit/checkpoints/latest',
        );
        if (latest.status !== 200) return null;
        const cp = latest.json();
        return (await exportText(cp.treeSize)).includes(event.metadata.eventId) ? cp : null;
      },
      (cp) => cp !== null,
    );
    const size = checkpoint!.treeSize;
    const key = await get<{ keyId: string; publicKey: string }>('/compliance/audit/public-key');
    expect(key.json().keyId).toBe(checkpoint!.keyId);
    const publicKey = publicKeyFromPem(key.json().publicKey);

    const saved = (
      await get<Parameters<typeof verifyAudit>[0]['checkpoint']>(
        `/compliance/audit/checkpoints/${size}`,
      )
    ).json();
    const request = { checkpoint: saved, publicKey };
    const text = await exportText(size);
    const report = verifyAudit({
      ...request,
      export: verifyExportText(text, wantedFromExport(request)),
    });
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);

    const line = text.split('\n').find((l) => l.includes(event.metadata.eventId))!;
    const index = (JSON.parse(line) as { index: number }).index;
    const proof = (
      await get<{ auditPath: string[]; entry: { payload: unknown } }>(
        `/compliance/audit/proof/inclusion?entry=${index}&checkpoint=${size}`,
      )
    ).json();
    expect(proof.entry.payload).toEqual(JSON.parse(JSON.stringify(event)));
    const leaf = leafHash(Buffer.from(canonicalJson(proof.entry)));
    expect(
      verifyInclusion(leaf, index, size, proof.auditPath.map(parseHash), parseHash(saved.rootHash)),
    ).toBe(true);

    // The ephemeral signing key is announced by its public half only.
    expect(service.output()).toContain(key.json().publicKey.split('\n')[1]);
    expect(service.output()).not.toContain('PRIVATE KEY');
  });
});
