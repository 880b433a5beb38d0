// Zero trust end to end: the four services run as their own processes with mutual TLS and a private
// OPA; every identity calls every endpoint of the README table, and every refusal is audited.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Client } from 'pg';
import {
  ALL_TOPICS,
  Principal,
  SERVICE_NAMES,
  ServiceName,
  spiffeId,
  topicName,
} from '@finance/contracts';
import {
  createCertificateAuthority,
  credentialsOf,
  DevCertificates,
  issueCertificate,
} from '@finance/dev-ca';
import { ensureTopics } from '@finance/local-stack';
import { HttpClient, HttpResponse, HttpTransportError, workloadPrincipal } from '@finance/platform';
import {
  createTestDatabase,
  freePort,
  launchService,
  OpaServer,
  repoRoot,
  ServiceProcess,
  startOpaServer,
  testCertificates,
  testStack,
  waitFor,
  waitUntilReady,
} from '@finance/testing';
import { ACCESS_ROWS, expandRow, parseAccessTable, rowKey, TABLE_CALLERS } from './access-table';

interface Running {
  process: ServiceProcess;
  databaseUrl: string;
}

interface AuditedDenial {
  service: string;
  principal: string | null;
  method: string;
  path: string;
  reason: string;
  status: number;
}

let opa: OpaServer;
let certificates: DevCertificates;
const services = {} as Record<ServiceName, Running>;
const extra: ServiceProcess[] = [];

async function startService(name: ServiceName, env: Record<string, string> = {}): Promise<Running> {
  const stack = testStack();
  const db = await createTestDatabase(`authz_${name}`);
  const process = launchService(name, {
    port: await freePort(),
    env: {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: stack.topicPrefix,
      OPA_URL: opa.url,
      // A busy test machine must not turn a slow decision into a 503; outages here are refusals.
      OPA_TIMEOUT_MS: '5000',
      ...env,
    },
    certificates,
  });
  await waitUntilReady(process);
  return { process, databaseUrl: db.url };
}

async function query<T>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

async function deniedEvents(running: Running): Promise<AuditedDenial[]> {
  const rows = await query<{ payload: { data: AuditedDenial } }>(
    running.databaseUrl,
    "SELECT payload FROM outbox WHERE payload->>'type' = 'AuthorizationDenied' ORDER BY position",
  );
  return rows.map((r) => r.payload.data);
}

async function outboxCount(running: Running): Promise<number> {
  const [row] = await query<{ n: string }>(running.databaseUrl, 'SELECT count(*) AS n FROM outbox');
  return Number(row.n);
}

function expectForbidden(response: HttpResponse): void {
  expect(response.status).toBe(403);
  expect(response.headers['content-type']).toContain('application/problem+json');
  expect(response.json()).toMatchObject({
    status: 403,
    title: 'forbidden',
    type: 'https://finance-core.dev/problems/forbidden',
  });
}

/** Retries an assertion about something another process does asynchronously (a log line). */
async function eventually(assertion: () => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return assertion();
    } catch (error) {
      if (attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Opens a TLS connection and sends nothing, so the server's verdict on the handshake is all that
 * happens: its alert's error code, `closed` when it hangs up, or `open` if it kept the connection.
 */
function handshake(
  url: string,
  credentials: { ca: Buffer | string; cert?: Buffer | string; key?: Buffer | string },
): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ...credentials });
    const verdict = (outcome: string) => {
      clearTimeout(undecided);
      socket.destroy();
      resolve(outcome);
    };
    const undecided = setTimeout(() => verdict('open'), 10_000);
    socket.on('error', (error: NodeJS.ErrnoException) => verdict(error.code ?? error.message));
    socket.on('close', () => verdict('closed'));
    socket.on('data', () => undefined);
  });
}

beforeAll(async () => {
  certificates = await testCertificates();
  const stack = testStack();
  await ensureTopics(
    stack.kafkaBrokers,
    ALL_TOPICS.map((t) => ({ name: topicName(t, stack.topicPrefix), partitions: t.partitions })),
  );
  opa = await startOpaServer();
  // Settlement reads trading's balances to reconcile, so it learns where this trading runs.
  services.trading = await startService('trading');
  const others = SERVICE_NAMES.filter((name) => name !== 'trading');
  const started = await Promise.all(
    others.map((name) =>
      startService(
        name,
        name === 'settlement' ? { TRADING_URL: services.trading.process.url } : {},
      ),
    ),
  );
  others.forEach((name, i) => (services[name] = started[i]));
}, 180_000);

afterAll(async () => {
  await Promise.all(
    [...Object.values(services).map((s) => s.process), ...extra].map((p) => p.stop('SIGTERM')),
  );
  await opa?.stop();
});

describe('mutual TLS', () => {
  it('fails the TLS handshake of a client without a certificate', async () => {
    const ca = readFileSync(certificates.caFile);
    for (const name of SERVICE_NAMES) {
      const outcome = await handshake(services[name].process.url, { ca });
      expect(outcome).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    }
  });

  it('refuses a certificate from another CA, even with a valid SPIFFE id', async () => {
    const rogueCa = await createCertificateAuthority({ commonName: 'not ours' });
    const rogue = await issueCertificate(rogueCa, spiffeId('compliance-service'));
    const ca = readFileSync(certificates.caFile);
    for (const name of SERVICE_NAMES) {
      const outcome = await handshake(services[name].process.url, {
        ca,
        cert: rogue.certPem,
        key: rogue.keyPem,
      });
      // Node ends such a handshake by hanging up (no alert); the service logs why.
      expect(['closed', 'ECONNRESET']).toContain(outcome);
      await eventually(() =>
        expect(services[name].process.output()).toMatch(
          /"reason":"UNABLE_TO_VERIFY_LEAF_SIGNATURE".*"msg":"TLS handshake refused"/,
        ),
      );
    }
  });

  it("lets clients verify the server's SPIFFE id", async () => {
    const client = new HttpClient({
      tls: {
        cert: readFileSync(credentialsOf(certificates, 'health-probe').certFile),
        key: readFileSync(credentialsOf(certificates, 'health-probe').keyFile),
        ca: readFileSync(certificates.caFile),
      },
    });
    try {
      const url = `${services.trading.process.url}/health/live`;
      expect(
        (await client.request(url, { expectedPeer: workloadPrincipal('trading') })).status,
      ).toBe(200);
      const impostor = client.request(url, { expectedPeer: workloadPrincipal('settlement') });
      await expect(impostor).rejects.toBeInstanceOf(HttpTransportError);
      await expect(impostor).rejects.toThrow(/expected spiffe:\/\/.*settlement-service/);
    } finally {
      client.close();
    }
  });
});

describe('who may call what', () => {
  it('answers every identity on every endpoint exactly as the README table says, and audits each 403 once', async () => {
    const table = parseAccessTable(readFileSync(join(repoRoot(), 'README.md'), 'utf8'));
    const calls = ACCESS_ROWS.flatMap((row) =>
      expandRow(row).flatMap((c) => TABLE_CALLERS.map((caller) => ({ ...c, caller }))),
    );
    // The whole matrix: every row of the table, on every service that serves it, for every caller.
    expect(calls).toHaveLength(
      ACCESS_ROWS.reduce((n, row) => n + (row.servedBy === 'every' ? 4 : 1), 0) *
        TABLE_CALLERS.length,
    );
    const before = Object.fromEntries(
      await Promise.all(
        SERVICE_NAMES.map(async (n) => [n, (await deniedEvents(services[n])).length]),
      ),
    ) as Record<ServiceName, number>;

    const outcomes: Array<{
      call: (typeof calls)[number];
      allowed: boolean;
      response: HttpResponse;
    }> = [];
    for (const call of calls) {
      const allowed = table.get(rowKey(call.row))?.has(call.caller.column);
      if (allowed === undefined) throw new Error(`${rowKey(call.row)} is missing from the README`);
      const response = await services[call.service].process.request(call.path, {
        method: call.method,
        as: call.caller.certificate,
      });
      outcomes.push({ call, allowed, response });
    }

    const mismatches: string[] = [];
    for (const { call, allowed, response } of outcomes) {
      // Allowed requests reach the handler, which may still refuse the example's empty body (400)
      // or unknown id (404); a route not built yet answers 404, but only after authorization.
      const ok = allowed ? [200, 201, 400, 404].includes(response.status) : response.status === 403;
      if (!ok) {
        mismatches.push(
          `${call.caller.column} ${call.method} ${call.path} on ${call.service}: ${response.status}`,
        );
      }
      if (!allowed) expectForbidden(response);
    }
    expect(mismatches).toEqual([]);

    for (const name of SERVICE_NAMES) {
      const expected = outcomes
        .filter((o) => o.call.service === name && !o.allowed)
        .map((o) => ({
          service: name,
          principal: o.call.caller.spiffeId,
          method: o.call.method,
          path: o.call.path.split('?')[0],
          status: 403,
        }));
      const audited = (await deniedEvents(services[name])).slice(before[name]);
      // Exactly one event per 403: same multiset, nothing extra for allowed calls.
      const key = (d: Omit<AuditedDenial, 'reason'>) =>
        `${d.principal} ${d.method} ${d.path} ${d.status}`;
      expect(audited.map(key).sort()).toEqual(expected.map(key).sort());
      expect(audited.every((d) => d.service === name && d.reason.startsWith('denied:'))).toBe(true);
    }

    // The relay publishes them to operations.events, where compliance audits them.
    for (const name of SERVICE_NAMES) {
      let pending = -1;
      for (let i = 0; i < 120 && pending !== 0; i++) {
        const [row] = await query<{ n: string }>(
          services[name].databaseUrl,
          "SELECT count(*) AS n FROM outbox WHERE payload->>'type' = 'AuthorizationDenied' AND published_at IS NULL",
        );
        pending = Number(row.n);
        if (pending !== 0) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(pending).toBe(0);
    }

    // ... and compliance appends every one of them to its audit log, exactly once.
    const deniedIds = (
      await Promise.all(
        SERVICE_NAMES.map((name) =>
          query<{ id: string }>(
            services[name].databaseUrl,
            "SELECT payload->'metadata'->>'eventId' AS id FROM outbox WHERE payload->>'type' = 'AuthorizationDenied'",
          ),
        ),
      )
    )
      .flat()
      .map((row) => row.id);
    expect(deniedIds.length).toBeGreaterThan(0);
    const inAuditLog = await waitFor(
      'every 403 in the audit log',
      async () =>
        (
          await query<{ n: number }>(
            services.compliance.databaseUrl,
            `SELECT count(*)::int AS n FROM audit_entries
              WHERE type = 'AuthorizationDenied' AND event_id = ANY($1::uuid[])`,
            [deniedIds],
          )
        )[0].n,
      (n) => n >= deniedIds.length,
      60_000,
    );
    expect(inAuditLog).toBe(deniedIds.length);
  });

  it('explains a denial in the decision log, without the credentials the client sent', async () => {
    const response = await services.trading.process.request('/trading/orders', {
      method: 'POST',
      as: 'auditor',
      headers: { authorization: 'Bearer top-secret-token', cookie: 'session=top-secret-cookie' },
    });
    expectForbidden(response);
    const { decisionId } = response.json<{ decisionId: string }>();
    let entry: ReturnType<OpaServer['decisions']>[number] | undefined;
    for (let i = 0; i < 40 && !entry; i++) {
      entry = opa.decisions().find((d) => d.decision_id === decisionId);
      if (!entry) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(entry).toMatchObject({
      path: 'finance/authz/decision',
      result: {
        allow: false,
        caller: 'auditor',
        reason: 'denied: no rule lets auditor POST /trading/orders',
      },
      input: {
        attributes: {
          source: { principal: spiffeId('auditor') },
          destination: { principal: workloadPrincipal('trading') },
          request: { http: { method: 'POST', path: '/trading/orders' } },
        },
      },
    });
    expect(entry?.erased).toEqual(
      expect.arrayContaining([
        '/input/attributes/request/http/headers/authorization',
        '/input/attributes/request/http/headers/cookie',
      ]),
    );
    expect(opa.output()).not.toContain('top-secret');
  });
});

describe('x-forwarded-client-cert', () => {
  const forged = (claimed: Principal, to: ServiceName = 'trading') =>
    `By=${workloadPrincipal(to)};Hash=abc;URI=${spiffeId(claimed)}`;

  it('is ignored when the service is not behind the mesh: the certificate decides', async () => {
    const trading = services.trading;
    const before = (await deniedEvents(trading)).length;
    const denied = await trading.process.request('/trading/orders', {
      method: 'POST',
      as: 'auditor',
      headers: { 'x-forwarded-client-cert': forged('order-service') },
    });
    expectForbidden(denied);
    // And it cannot take rights away from a caller that has them either.
    const allowed = await trading.process.request('/trading/orders', {
      method: 'POST',
      as: 'order-service',
      headers: { 'x-forwarded-client-cert': forged('auditor') },
    });
    expect(allowed.status).toBe(400); // past the guard: the handler refuses the empty order
    const audited = (await deniedEvents(trading)).slice(before);
    expect(audited).toEqual([
      expect.objectContaining({ principal: spiffeId('auditor'), method: 'POST', status: 403 }),
    ]);
    await eventually(() =>
      expect(trading.process.output()).toContain(
        'ignored x-forwarded-client-cert: this service is not behind the mesh',
      ),
    );
  });

  it('names the caller behind the mesh, only when our sidecar addressed it to us', async () => {
    const stack = testStack();
    const db = await createTestDatabase('authz_mesh');
    const mesh = launchService('trading', {
      port: await freePort(),
      env: {
        MESH_MODE: 'true',
        DATABASE_URL: db.url,
        KAFKA_BROKERS: stack.kafkaBrokers.join(','),
        KAFKA_TOPIC_PREFIX: stack.topicPrefix,
        OPA_URL: opa.url,
        OPA_TIMEOUT_MS: '5000',
      },
    });
    extra.push(mesh);
    await waitUntilReady(mesh);
    expect(mesh.url).toMatch(/^http:\/\//);
    const post = (xfcc?: string) =>
      mesh.request('/trading/orders', {
        method: 'POST',
        headers: xfcc ? { 'x-forwarded-client-cert': xfcc } : {},
      });

    expect((await post(forged('order-service'))).status).toBe(400);
    // Several proxies: the last element is our sidecar's.
    expect((await post(`${forged('auditor')},${forged('order-service')}`)).status).toBe(400);
    expectForbidden(await post(forged('auditor')));
    expectForbidden(await post());
    expectForbidden(await post(forged('order-service', 'settlement')));
    expectForbidden(await post(`URI=${spiffeId('order-service')}`));
    expectForbidden(await post('By=garbage"'));
    expect((await mesh.request('/health/ready')).status).toBe(200);

    const audited = await deniedEvents({ process: mesh, databaseUrl: db.url });
    expect(audited.map((d) => d.principal)).toEqual([spiffeId('auditor'), null, null, null, null]);
  });
});

describe('when OPA is down', () => {
  it('refuses protected requests with 503, changes nothing, keeps health up, and counts it', async () => {
    const attempts: Array<{ service: ServiceName; method: string; path: string; as: Principal }> = [
      { service: 'trading', method: 'POST', path: '/trading/orders', as: 'order-service' },
      { service: 'settlement', method: 'POST', path: '/settlement/process', as: 'trading-service' },
      { service: 'risk', method: 'PUT', path: '/risk/limits/ACC-1', as: 'risk-officer' },
      { service: 'compliance', method: 'GET', path: '/compliance/reports/daily', as: 'auditor' },
      { service: 'trading', method: 'GET', path: '/metrics', as: 'compliance-service' },
    ];
    const before = {} as Record<ServiceName, { rows: number; denials: number }>;
    for (const name of SERVICE_NAMES) {
      before[name] = {
        rows: await outboxCount(services[name]),
        denials: (await deniedEvents(services[name])).length,
      };
    }

    await opa.stop();
    try {
      for (const attempt of attempts) {
        const response = await services[attempt.service].process.request(attempt.path, {
          method: attempt.method,
          as: attempt.as,
        });
        expect(response.status).toBe(503);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.json()).toMatchObject({ status: 503, title: 'authorization unavailable' });
      }
      for (const name of SERVICE_NAMES) {
        expect((await services[name].process.request('/health/live')).status).toBe(200);
        expect((await services[name].process.request('/health/ready')).status).toBe(200);
      }
    } finally {
      await opa.start();
    }

    // Nothing happened but the refusals themselves, each audited as a 503.
    for (const name of SERVICE_NAMES) {
      const mine = attempts.filter((a) => a.service === name);
      expect(await outboxCount(services[name])).toBe(before[name].rows + mine.length);
      const audited = (await deniedEvents(services[name])).slice(before[name].denials);
      expect(audited.map((d) => [d.principal, d.method, d.path, d.status])).toEqual(
        mine.map((a) => [spiffeId(a.as), a.method, a.path, 503]),
      );
    }

    const metrics = await services.trading.process.request('/metrics', {
      as: 'compliance-service',
    });
    expect(metrics.status).toBe(200);
    const unavailable = metrics.body.match(
      /^authz_opa_unavailable_total\{kind="unreachable",service="trading"\} (\d+)$/m,
    );
    expect(Number(unavailable?.[1])).toBe(2);
    expect(metrics.body).toMatch(
      /^authz_decisions_total\{outcome="unavailable",service="trading"\} 2$/m,
    );
  });
});
