// The start-up, readiness and shutdown guarantees every service gives, checked against the real
// stack with the service running as its own process.
import { Client } from 'pg';
import { credentialsOf } from '@finance/dev-ca';
import { createTestDatabase, testCertificates, testStack } from './test-stack';
import { freePort, launchService, ServiceProcess, waitUntilReady } from './service-process';

export function describeServiceLifecycle(name: string, ownTables: string[]): void {
  describe(`${name} service lifecycle`, () => {
    const running: ServiceProcess[] = [];
    afterAll(async () => {
      await Promise.all(running.map((s) => s.stop('SIGKILL')));
    });

    async function start(env: Record<string, string>): Promise<ServiceProcess> {
      const stack = testStack();
      const service = launchService(name, {
        port: await freePort(),
        env: {
          KAFKA_BROKERS: stack.kafkaBrokers.join(','),
          KAFKA_TOPIC_PREFIX: stack.topicPrefix,
          OPA_URL: stack.opaUrl,
          // A busy test machine must not turn a slow decision into a 503.
          OPA_TIMEOUT_MS: '5000',
          ...env,
        },
        certificates: await testCertificates(),
      });
      running.push(service);
      return service;
    }

    it('becomes ready on a fresh database, with its tables migrated and problem details on errors', async () => {
      const db = await createTestDatabase(name);
      const service = await start({ DATABASE_URL: db.url });
      await waitUntilReady(service);

      const live = await service.request('/health/live');
      expect(live.status).toBe(200);
      const ready = await service.request('/health/ready');
      // Services with Kafka handlers also report their inbox consumer.
      expect(ready.json()).toEqual({
        status: 'ready',
        checks: expect.objectContaining({ database: { status: 'up' }, kafka: { status: 'up' } }),
      });

      const client = new Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ table_name: string }>(
          "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        );
        expect(rows.map((r) => r.table_name)).toEqual(
          expect.arrayContaining(['schema_migrations', ...ownTables]),
        );
      } finally {
        await client.end();
      }

      // Metrics are for compliance (and Prometheus in the mesh), not for the health probe.
      const metrics = await service.request('/metrics', { as: 'compliance-service' });
      expect(metrics.status).toBe(200);
      expect(metrics.body).toMatch(/^outbox_lag_events\{[^}]*\} 0$/m);
      expect(metrics.body).toContain(`service="${name}"`);
      expect((await service.request('/metrics')).status).toBe(403);

      // A route that does not exist is authorized first: compliance may read it, so 404.
      const missing = await service.request(`/${name}/no-such-route`, { as: 'compliance-service' });
      expect(missing.status).toBe(404);
      expect(missing.headers['content-type']).toContain('application/problem+json');
      expect(missing.json()).toMatchObject({ status: 404, instance: `/${name}/no-such-route` });

      // SIGTERM while a request is in flight: the request is answered, then the process exits 0.
      const inFlight = service.request('/health/ready');
      await new Promise((resolve) => setTimeout(resolve, 20));
      const exit = service.stop('SIGTERM');
      expect([200, 503]).toContain((await inFlight).status);
      expect(await exit).toEqual({ code: 0, signal: null });
    });

    it('exits non-zero with one clear line when the database password is wrong', async () => {
      const db = await createTestDatabase(name);
      const url = new URL(db.url);
      url.password = 'definitely-wrong';
      const service = await start({ DATABASE_URL: url.toString() });
      const { code } = await service.exited;
      expect(code).toBe(1);
      const output = service.output().trim();
      expect(output.split('\n')).toHaveLength(1);
      expect(output).toMatch(/database authentication failed/);
      expect(output).not.toContain('definitely-wrong');
    });

    it('stays up and answers 503 on readiness while Kafka is unreachable', async () => {
      const db = await createTestDatabase(name);
      const closedPort = await freePort();
      const service = await start({
        DATABASE_URL: db.url,
        KAFKA_BROKERS: `127.0.0.1:${closedPort}`,
      });
      let ready: Awaited<ReturnType<ServiceProcess['request']>> | undefined;
      for (let i = 0; i < 80 && !ready; i++) {
        ready = await service.request('/health/ready').catch(() => undefined);
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(ready?.status).toBe(503);
      const body = ready?.json<{ checks: { database: unknown; kafka: { status: string } } }>();
      expect(body?.checks.database).toEqual({ status: 'up' });
      expect(body?.checks.kafka.status).toBe('down');
      expect((await service.request('/health/live')).status).toBe(200);
      expect(service.child.exitCode).toBeNull();
    });

    it('refuses to start with one line naming every missing variable', async () => {
      const service = await start({
        DATABASE_URL: '',
        KAFKA_BROKERS: '',
        OPA_URL: '',
        TLS_CA_FILE: '',
      });
      const { code } = await service.exited;
      expect(code).toBe(1);
      expect(service.output().trim()).toBe(
        `${name}: invalid configuration: DATABASE_URL is required; KAFKA_BROKERS is required; ` +
          'OPA_URL is required; TLS_CA_FILE is required (unless MESH_MODE=true)',
      );
    });

    it("refuses to start with another workload's certificate", async () => {
      const db = await createTestDatabase(name);
      const other = credentialsOf(await testCertificates(), 'order-service');
      const service = await start({
        DATABASE_URL: db.url,
        TLS_CERT_FILE: other.certFile,
        TLS_KEY_FILE: other.keyFile,
      });
      expect((await service.exited).code).toBe(1);
      expect(service.output().trim()).toBe(
        `${name}: TLS_CERT_FILE is for spiffe://cluster.local/ns/finance/sa/order-service, ` +
          `not for this service (spiffe://cluster.local/ns/finance/sa/${name}-service)`,
      );
    });
  });
}
