// The local development certificate authority: a throw-away CA and short-lived X.509-SVIDs (one
// SPIFFE URI SAN each) so services and clients run mutual TLS on a laptop as they do in the mesh.
import 'reflect-metadata'; // @peculiar/x509 resolves its ASN.1 classes through the Reflect API
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NAMESPACE, PRINCIPALS, TRUST_DOMAIN } from '@finance/contracts';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
// Certificates start slightly in the past so a few seconds of clock skew never makes them "not yet valid".
const BACKDATE_MS = 5 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

export const DEFAULT_VALID_HOURS = 12;

/** Local tooling (npm start, the test harness) probes readiness with this identity, which the policy does not know. */
export const HEALTH_PROBE = 'health-probe';

export interface DevIdentity {
  /** File name stem and how tools refer to it, e.g. `order-service`. */
  name: string;
  spiffeId: string;
}

export function financeSpiffeId(account: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/${account}`;
}

/** The identities of the system (services, gateway and officers) plus the local health probe. */
export const DEV_IDENTITIES: readonly DevIdentity[] = [
  ...PRINCIPALS.map((name) => ({ name, spiffeId: financeSpiffeId(name) })),
  { name: HEALTH_PROBE, spiffeId: financeSpiffeId(HEALTH_PROBE) },
];

export interface CertificateAuthority {
  certPem: string;
  subject: string;
  notAfter: Date;
  keys: CryptoKeyPair;
}

export interface IssuedCertificate {
  spiffeId: string;
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  notAfter: Date;
}

export interface ValidityOptions {
  validHours?: number;
  now?: Date;
}

function validity({ validHours = DEFAULT_VALID_HOURS, now = new Date() }: ValidityOptions): {
  notBefore: Date;
  notAfter: Date;
} {
  if (!(validHours > 0 && validHours <= 24 * 7)) {
    throw new RangeError(`validHours must be in (0, 168], got ${validHours}`);
  }
  return {
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + validHours * HOUR_MS),
  };
}

// A positive 128-bit serial: the top bit cleared so DER does not read it as negative.
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return bytes.toString('hex');
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
}

export async function createCertificateAuthority(
  options: ValidityOptions & { commonName?: string } = {},
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(options);
  const subject = `CN=${options.commonName ?? 'finance-core dev CA'}, O=finance-core (development only)`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subject,
    keys,
    signingAlgorithm: KEY_ALGORITHM,
    notBefore,
    notAfter,
    extensions: [
      // pathLen 0: this CA signs leaf certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), subject, notAfter, keys };
}

const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;

/**
 * An X.509-SVID for `spiffeId`: exactly one URI SAN, usable as client and server certificate.
 * DNS `localhost` and IP `127.0.0.1` are added so curl and browsers accept a local service too.
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  spiffeId: string,
  options: ValidityOptions = {},
): Promise<IssuedCertificate> {
  if (!SPIFFE_ID.test(spiffeId)) throw new Error(`not a SPIFFE id: ${spiffeId}`);
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(options);
  const effectiveNotAfter = notAfter > ca.notAfter ? ca.notAfter : notAfter;
  const account = spiffeId.slice(spiffeId.lastIndexOf('/') + 1);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${account}, O=finance-core (development only)`,
    issuer: ca.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: KEY_ALGORITHM,
    notBefore,
    notAfter: effectiveNotAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: spiffeId },
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    spiffeId,
    certPem: cert.toString('pem'),
    keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
    notAfter: effectiveNotAfter,
  };
}

/** Where one identity's files are, in the shape TLS clients and the services' config want. */
export interface ClientCredentials {
  name: string;
  spiffeId: string;
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** What `writeDevCertificates` wrote, also stored as `certificates.json` in the directory. */
export interface DevCertificates {
  dir: string;
  caFile: string;
  notAfter: string;
  identities: Record<string, { spiffeId: string; certFile: string; keyFile: string }>;
}

const MANIFEST = 'certificates.json';

// Write-then-rename, so a service starting meanwhile never reads half a PEM file.
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/**
 * Generates a new CA and one certificate per identity into `dir` (`ca.crt`, `<name>.crt`,
 * `<name>.key`). The CA's private key is never written: nothing can be issued later, so a leaked
 * directory is worth at most `validHours`.
 */
export async function writeDevCertificates(options: {
  dir: string;
  identities?: readonly DevIdentity[];
  validHours?: number;
  now?: Date;
}): Promise<DevCertificates> {
  const identities = options.identities ?? DEV_IDENTITIES;
  const names = new Set<string>();
  for (const { name } of identities) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`invalid identity name '${name}'`);
    if (names.has(name)) throw new Error(`identity '${name}' is listed twice`);
    names.add(name);
  }
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const ca = await createCertificateAuthority(options);
  const caFile = join(options.dir, 'ca.crt');
  await writeAtomic(caFile, ca.certPem, 0o644);
  const manifest: DevCertificates = {
    dir: options.dir,
    caFile,
    notAfter: ca.notAfter.toISOString(),
    identities: {},
  };
  for (const identity of identities) {
    const issued = await issueCertificate(ca, identity.spiffeId, options);
    const certFile = join(options.dir, `${identity.name}.crt`);
    const keyFile = join(options.dir, `${identity.name}.key`);
    await writeAtomic(keyFile, issued.keyPem, 0o600);
    await writeAtomic(certFile, issued.certPem, 0o644);
    manifest.identities[identity.name] = { spiffeId: identity.spiffeId, certFile, keyFile };
  }
  await writeAtomic(join(options.dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n', 0o644);
  return manifest;
}

export async function readDevCertificates(dir: string): Promise<DevCertificates> {
  return JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as DevCertificates;
}

export function credentialsOf(certs: DevCertificates, name: string): ClientCredentials {
  const identity = certs.identities[name];
  if (!identity) {
    throw new Error(
      `no certificate for '${name}' in ${certs.dir} (has ${Object.keys(certs.identities).join(', ')})`,
    );
  }
  return { name, ...identity, caFile: certs.caFile };
}
