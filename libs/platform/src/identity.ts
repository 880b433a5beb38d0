// Who this service is (its SPIFFE id) and how callers reach it: mutual TLS it terminates itself,
// or plain HTTP from the Istio sidecar that terminated it.
import { Principal, ServiceName, spiffeId } from '@finance/contracts';
import type { BaseConfig } from './config';
import { StartupError } from './errors';
import { readTlsMaterial, spiffeIdFromSubjectAltName, TlsMaterial, TlsMaterialError } from './tls';

export const SERVICE_IDENTITY = Symbol('SERVICE_IDENTITY');

/**
 * Provided by the authorization library's guard; start-up fails without it, so a service cannot
 * forget to authorize its requests.
 */
export const AUTHORIZATION_GUARD = Symbol('AUTHORIZATION_GUARD');

export type ServiceTransport =
  { mode: 'mesh' } | { mode: 'mutual-tls'; material: TlsMaterial; notAfter: Date };

export interface ServiceIdentity {
  service: ServiceName;
  /** This workload's SPIFFE id, the `destination.principal` of every request it serves. */
  principal: string;
  transport: ServiceTransport;
}

export function workloadPrincipal(service: ServiceName): string {
  return spiffeId(`${service}-service` satisfies Principal);
}

/** Reads and checks the service's certificate (off the mesh); every problem is one StartupError line. */
export function loadServiceIdentity(service: ServiceName, config: BaseConfig): ServiceIdentity {
  const principal = workloadPrincipal(service);
  if (config.MESH_MODE) return { service, principal, transport: { mode: 'mesh' } };
  const { TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE } = config;
  if (!TLS_CERT_FILE || !TLS_KEY_FILE || !TLS_CA_FILE) {
    // The config schema already requires them; this keeps the types honest.
    throw new StartupError('TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE are required');
  }
  let material: ReturnType<typeof readTlsMaterial>;
  try {
    material = readTlsMaterial({
      certFile: TLS_CERT_FILE,
      keyFile: TLS_KEY_FILE,
      caFile: TLS_CA_FILE,
    });
  } catch (error) {
    if (error instanceof TlsMaterialError) throw new StartupError(error.message);
    throw error;
  }
  const own = spiffeIdFromSubjectAltName(material.certificate.subjectAltName);
  if (own !== principal) {
    throw new StartupError(
      `TLS_CERT_FILE is for ${own ?? 'no SPIFFE id'}, not for this service (${principal})`,
    );
  }
  return {
    service,
    principal,
    transport: {
      mode: 'mutual-tls',
      material: { cert: material.cert, key: material.key, ca: material.ca },
      notAfter: new Date(material.certificate.validTo),
    },
  };
}
