import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  credentialsOf,
  DEV_IDENTITIES,
  issueCertificate,
  readDevCertificates,
  writeDevCertificates,
} from './dev-ca';

const NOW = new Date('2030-01-01T00:00:00Z');

describe('dev certificate authority', () => {
  it('issues one short-lived certificate per identity, each with exactly its SPIFFE URI SAN', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'dev-ca-')), 'certs');
    const certs = await writeDevCertificates({ dir, validHours: 6, now: NOW });

    expect(Object.keys(certs.identities).sort()).toEqual(
      [
        'auditor',
        'compliance-officer',
        'compliance-service',
        'health-probe',
        'order-service',
        'risk-officer',
        'risk-service',
        'settlement-service',
        'trading-service',
      ].sort(),
    );
    const ca = new X509Certificate(readFileSync(certs.caFile));
    expect(ca.ca).toBe(true);
    for (const { name, spiffeId } of DEV_IDENTITIES) {
      const files = credentialsOf(certs, name);
      const cert = new X509Certificate(readFileSync(files.certFile));
      expect(spiffeId).toBe(`spiffe://cluster.local/ns/finance/sa/${name}`);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.ca).toBe(false);
      const uris = (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:'));
      expect(uris).toEqual([`URI:${spiffeId}`]);
      expect(new Date(cert.validTo).getTime() - NOW.getTime()).toBe(6 * 60 * 60 * 1000);
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(files.keyFile)))).toBe(true);
      expect(statSync(files.keyFile).mode & 0o777).toBe(0o600);
    }
    expect(await readDevCertificates(dir)).toEqual(certs);
  });

  it('never signs with another CA and refuses what is not a SPIFFE id', async () => {
    const mine = await createCertificateAuthority();
    const other = await createCertificateAuthority({ commonName: 'someone else' });
    const issued = await issueCertificate(other, 'spiffe://cluster.local/ns/finance/sa/auditor');
    const cert = new X509Certificate(issued.certPem);
    expect(cert.verify(new X509Certificate(mine.certPem).publicKey)).toBe(false);
    await expect(issueCertificate(mine, 'https://cluster.local/auditor')).rejects.toThrow(
      /not a SPIFFE id/,
    );
    await expect(issueCertificate(mine, 'spiffe://cluster.local/ns/a,b/sa/x')).rejects.toThrow(
      /not a SPIFFE id/,
    );
  });

  it('does not outlive its CA and rejects unreasonable lifetimes', async () => {
    const ca = await createCertificateAuthority({ validHours: 1, now: NOW });
    const issued = await issueCertificate(ca, 'spiffe://cluster.local/ns/finance/sa/auditor', {
      validHours: 5,
      now: NOW,
    });
    expect(issued.notAfter).toEqual(ca.notAfter);
    await expect(createCertificateAuthority({ validHours: 0 })).rejects.toThrow(RangeError);
    await expect(createCertificateAuthority({ validHours: 24 * 365 })).rejects.toThrow(RangeError);
  });
});
