import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertificateAuthority,
  createCertificateAuthority,
  financeSpiffeId,
  issueCertificate,
} from '@finance/dev-ca';
import { baseConfigSchema } from './config';
import { StartupError } from './errors';
import { HttpClient, HttpTransportError } from './http-client';
import { loadServiceIdentity } from './identity';
import {
  mutualTlsServerOptions,
  peerSpiffeId,
  readTlsMaterial,
  spiffeIdFromSubjectAltName,
  TlsMaterialError,
} from './tls';

const dir = mkdtempSync(join(tmpdir(), 'tls-spec-'));
let n = 0;
function file(content: string): string {
  const path = join(dir, `f${n++}.pem`);
  writeFileSync(path, content);
  return path;
}

async function issued(ca: CertificateAuthority, account: string, now?: Date) {
  const c = await issueCertificate(ca, financeSpiffeId(account), { now, validHours: 1 });
  return { certFile: file(c.certPem), keyFile: file(c.keyPem), cert: c.certPem, key: c.keyPem };
}

describe('SPIFFE ids in certificates', () => {
  it('takes the one URI SAN when it is a SPIFFE id, and nothing otherwise', () => {
    const id = 'spiffe://cluster.local/ns/finance/sa/auditor';
    expect(spiffeIdFromSubjectAltName(`URI:${id}, DNS:localhost, IP Address:127.0.0.1`)).toBe(id);
    expect(spiffeIdFromSubjectAltName(`DNS:localhost, URI:${id}`)).toBe(id);
    for (const san of [
      undefined,
      'DNS:localhost',
      `URI:${id}, URI:spiffe://cluster.local/ns/finance/sa/risk-officer`,
      'URI:https://cluster.local/ns/finance/sa/auditor',
      'URI:"spiffe://cluster.local/ns/finance/sa/a, URI:spiffe://x/y"',
      'URI:spiffe://cluster.local/',
    ]) {
      expect(spiffeIdFromSubjectAltName(san)).toBeUndefined();
    }
  });
});

describe('TLS material', () => {
  let ca: CertificateAuthority;
  let caFile: string;
  beforeAll(async () => {
    ca = await createCertificateAuthority();
    caFile = file(ca.certPem);
  });

  it('reads a certificate, its key and the CA that issued it', async () => {
    const own = await issued(ca, 'trading-service');
    const material = readTlsMaterial({ ...own, caFile });
    expect(spiffeIdFromSubjectAltName(material.certificate.subjectAltName)).toBe(
      financeSpiffeId('trading-service'),
    );
  });

  it('says which variable points at the problem', async () => {
    const own = await issued(ca, 'trading-service');
    const other = await issued(ca, 'risk-service');
    const foreign = await issued(await createCertificateAuthority(), 'trading-service');
    const expired = await issued(ca, 'trading-service', new Date(Date.now() - 3 * 3600_000));
    const cases: Array<[Parameters<typeof readTlsMaterial>[0], RegExp]> = [
      [{ ...own, caFile: join(dir, 'missing.pem') }, /^TLS_CA_FILE cannot be read: .*\(ENOENT\)$/],
      [{ ...own, keyFile: own.certFile, caFile }, /^TLS_KEY_FILE is not a PEM private key/],
      [
        { ...own, keyFile: other.keyFile, caFile },
        /^TLS_KEY_FILE does not belong to TLS_CERT_FILE$/,
      ],
      [{ ...foreign, caFile }, /^TLS_CERT_FILE was not issued by the CA in TLS_CA_FILE$/],
      [{ ...expired, caFile }, /^TLS_CERT_FILE expired at .*: issue a new one/],
      [{ ...own, certFile: own.keyFile, caFile }, /^TLS_CERT_FILE is not a PEM certificate/],
    ];
    for (const [files, message] of cases) {
      expect(() => readTlsMaterial(files)).toThrow(TlsMaterialError);
      expect(() => readTlsMaterial(files)).toThrow(message);
    }
  });

  it("refuses to run a service on another workload's certificate; needs none behind the mesh", async () => {
    const config = (env: Record<string, string>) =>
      baseConfigSchema.parse({
        PORT: '1',
        DATABASE_URL: 'postgres://u@h/d',
        KAFKA_BROKERS: 'h:1',
        OPA_URL: 'http://127.0.0.1:8181',
        ...env,
      });
    const gateway = await issued(ca, 'order-service');
    const tls = {
      TLS_CERT_FILE: gateway.certFile,
      TLS_KEY_FILE: gateway.keyFile,
      TLS_CA_FILE: caFile,
    };
    expect(() => loadServiceIdentity('trading', config(tls))).toThrow(StartupError);
    expect(() => loadServiceIdentity('trading', config(tls))).toThrow(
      'TLS_CERT_FILE is for spiffe://cluster.local/ns/finance/sa/order-service, not for this service (spiffe://cluster.local/ns/finance/sa/trading-service)',
    );
    expect(loadServiceIdentity('trading', config({ MESH_MODE: 'true' }))).toEqual({
      service: 'trading',
      principal: 'spiffe://cluster.local/ns/finance/sa/trading-service',
      transport: { mode: 'mesh' },
    });
  });

  it('serves only clients of the same CA and tells the handler who they are', async () => {
    const own = await issued(ca, 'settlement-service');
    const server = createServer(
      mutualTlsServerOptions(readTlsMaterial({ ...own, caFile })),
      (req, res) => res.end(peerSpiffeId(req.socket) ?? 'nobody'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const client = async (account: string, issuer: CertificateAuthority) => {
      const c = await issued(issuer, account);
      return new HttpClient({
        tls: { cert: Buffer.from(c.cert), key: Buffer.from(c.key), ca: Buffer.from(ca.certPem) },
      });
    };
    const trading = await client('trading-service', ca);
    const rogue = await client('trading-service', await createCertificateAuthority());
    try {
      const response = await trading.request(url, {
        expectedPeer: financeSpiffeId('settlement-service'),
      });
      expect(response.body).toBe(financeSpiffeId('trading-service'));
      await expect(
        trading.request(url, { expectedPeer: financeSpiffeId('risk-service') }),
      ).rejects.toThrow(/server is spiffe:\/\/.*settlement-service, expected .*risk-service/);
      await expect(rogue.request(url)).rejects.toBeInstanceOf(HttpTransportError);
    } finally {
      trading.close();
      rogue.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
