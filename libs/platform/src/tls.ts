// Mutual TLS off the mesh: the service's own X.509-SVID, the listener options that demand a client
// certificate from the same CA, and SPIFFE ids read from certificates.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { SecureContextOptions, TLSSocket } from 'node:tls';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** PEM contents of a certificate, its key and the CA that verifies peers. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export class TlsMaterialError extends Error {
  override readonly name = 'TlsMaterialError';
}

// The characters the SPIFFE ID standard allows in a trust domain and in path segments; a value with
// anything else is not an identity, whatever it claims.
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;

export function isSpiffeId(value: string): boolean {
  return SPIFFE_ID.test(value);
}

/**
 * The SPIFFE id in Node's `subjectAltName` text (`URI:spiffe://..., DNS:localhost`), defined only
 * when there is exactly one URI SAN and it is a SPIFFE id, as an X.509-SVID requires. Node quotes
 * values holding separators, and such a value never matches the id pattern, so splitting is safe.
 */
export function spiffeIdFromSubjectAltName(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  const uris = subjectAltName
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
  return uris.length === 1 && isSpiffeId(uris[0]) ? uris[0] : undefined;
}

// A connection's peer certificate never changes, so it is parsed once per connection, not per request.
const peerIds = new WeakMap<Socket, string | null>();

/** The verified client's SPIFFE id on a mutual-TLS connection; undefined on any other socket. */
export function peerSpiffeId(socket: Socket): string | undefined {
  const cached = peerIds.get(socket);
  if (cached !== undefined) return cached ?? undefined;
  const tls = socket as Partial<TLSSocket>;
  let id: string | undefined;
  if (tls.encrypted && tls.authorized && typeof tls.getPeerX509Certificate === 'function') {
    id = spiffeIdFromSubjectAltName(tls.getPeerX509Certificate()?.subjectAltName);
  }
  peerIds.set(socket, id ?? null);
  return id;
}

function readPem(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new TlsMaterialError(`${variable} cannot be read: ${file} (${code})`);
  }
}

/**
 * Reads and checks a certificate, its key and the CA: the key matches, the CA issued the
 * certificate, and it is valid now. Errors name the variable that points at the bad file.
 */
export function readTlsMaterial(
  files: TlsFiles,
  variables = { cert: 'TLS_CERT_FILE', key: 'TLS_KEY_FILE', ca: 'TLS_CA_FILE' },
  now = new Date(),
): TlsMaterial & { certificate: X509Certificate } {
  const material = {
    cert: readPem(files.certFile, variables.cert),
    key: readPem(files.keyFile, variables.key),
    ca: readPem(files.caFile, variables.ca),
  };
  let certificate: X509Certificate;
  let ca: X509Certificate;
  try {
    certificate = new X509Certificate(material.cert);
  } catch {
    throw new TlsMaterialError(`${variables.cert} is not a PEM certificate: ${files.certFile}`);
  }
  try {
    ca = new X509Certificate(material.ca);
  } catch {
    throw new TlsMaterialError(`${variables.ca} is not a PEM certificate: ${files.caFile}`);
  }
  let keyMatches: boolean;
  try {
    keyMatches = certificate.checkPrivateKey(createPrivateKey(material.key));
  } catch {
    throw new TlsMaterialError(`${variables.key} is not a PEM private key: ${files.keyFile}`);
  }
  if (!keyMatches) {
    throw new TlsMaterialError(`${variables.key} does not belong to ${variables.cert}`);
  }
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) {
    throw new TlsMaterialError(`${variables.cert} was not issued by the CA in ${variables.ca}`);
  }
  if (new Date(certificate.validTo) <= now) {
    throw new TlsMaterialError(
      `${variables.cert} expired at ${new Date(certificate.validTo).toISOString()}: issue a new one (npm start does)`,
    );
  }
  return { ...material, certificate };
}

/** Listener options: TLS 1.3 only, and no connection without a client certificate from our CA. */
export function mutualTlsServerOptions(material: TlsMaterial): SecureContextOptions & {
  requestCert: true;
  rejectUnauthorized: true;
} {
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  };
}
