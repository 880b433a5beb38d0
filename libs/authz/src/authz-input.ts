// The authorization input in the shape of Envoy's ext_authz CheckRequest, so one Rego policy
// decides for the OPA sidecar in the mesh and for this guard everywhere else.
import { peerSpiffeId, ServiceIdentity } from '@finance/platform';
import type { IncomingMessage } from 'node:http';
import { principalFromXfcc, XFCC_HEADER } from './xfcc';

export interface AuthzInput {
  attributes: {
    source: {
      principal: string;
      address: { socketAddress: { address: string; portValue: number } };
    };
    destination: { principal: string };
    request: {
      http: {
        id?: string;
        method: string;
        path: string;
        host: string;
        protocol: string;
        headers: Record<string, string>;
      };
    };
  };
}

export interface Caller {
  /** SPIFFE id of the caller, when it proved one; undefined for anyone else. */
  principal: string | undefined;
  /** A client sent x-forwarded-client-cert straight to a service that is not behind the mesh. */
  forgedForwardedCert: boolean;
}

/**
 * Off the mesh the caller is the verified peer certificate of the connection; behind it, the
 * element our sidecar put in x-forwarded-client-cert. The header never counts off the mesh:
 * there is no sidecar to have set it, so the client did.
 */
export function callerOf(request: IncomingMessage, identity: ServiceIdentity): Caller {
  const forwarded = request.headers[XFCC_HEADER];
  if (identity.transport.mode === 'mesh') {
    return {
      principal: principalFromXfcc(forwarded, identity.principal),
      forgedForwardedCert: false,
    };
  }
  return { principal: peerSpiffeId(request.socket), forgedForwardedCert: forwarded !== undefined };
}

export function authzInput(
  request: IncomingMessage,
  identity: ServiceIdentity,
  caller: Caller,
): AuthzInput {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    // Off the mesh the header is the client's claim, not a proxy's: leave it out entirely.
    if (name === XFCC_HEADER && identity.transport.mode !== 'mesh') continue;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const requestId = headers['x-request-id'];
  return {
    attributes: {
      // Envoy reports "" for a caller without a certificate; the policy treats it as missing.
      source: {
        principal: caller.principal ?? '',
        address: {
          socketAddress: {
            address: request.socket.remoteAddress ?? '',
            portValue: request.socket.remotePort ?? 0,
          },
        },
      },
      destination: { principal: identity.principal },
      request: {
        http: {
          ...(requestId ? { id: requestId } : {}),
          method: request.method ?? '',
          // Raw, query included, exactly as Envoy passes :path; the policy normalises it.
          path: request.url ?? '',
          host: headers.host ?? '',
          protocol: `HTTP/${request.httpVersion}`,
          headers,
        },
      },
    },
  };
}
