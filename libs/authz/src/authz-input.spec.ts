import type { IncomingMessage } from 'node:http';
import type { ServiceIdentity } from '@finance/platform';
import { authzInput, callerOf } from './authz-input';

const trading = 'spiffe://cluster.local/ns/finance/sa/trading-service';
const gateway = 'spiffe://cluster.local/ns/finance/sa/order-service';
const auditor = 'spiffe://cluster.local/ns/finance/sa/auditor';

const local: ServiceIdentity = {
  service: 'trading',
  principal: trading,
  transport: {
    mode: 'mutual-tls',
    material: { cert: Buffer.alloc(0), key: Buffer.alloc(0), ca: Buffer.alloc(0) },
    notAfter: new Date(),
  },
};
const mesh: ServiceIdentity = { ...local, transport: { mode: 'mesh' } };

// What Node hands the guard: a request on a (possibly mutual-TLS) socket.
function request(
  headers: Record<string, string | string[]>,
  peer?: { authorized: boolean; subjectAltName: string },
): IncomingMessage {
  const socket = {
    remoteAddress: '10.0.0.7',
    remotePort: 51234,
    ...(peer
      ? {
          encrypted: true,
          authorized: peer.authorized,
          getPeerX509Certificate: () => ({ subjectAltName: peer.subjectAltName }),
        }
      : {}),
  };
  return {
    method: 'DELETE',
    url: '/trading/orders/ord-1?reason=user',
    httpVersion: '1.1',
    headers: { host: 'localhost:3001', ...headers },
    socket,
  } as unknown as IncomingMessage;
}

describe('authorization input', () => {
  it('off the mesh: the caller is the verified certificate, and a forwarded-cert header is dropped', () => {
    const forged = `By=${trading};URI=${gateway}`;
    const req = request(
      { 'x-forwarded-client-cert': forged, 'x-request-id': 'r-1', accept: ['a', 'b'] },
      { authorized: true, subjectAltName: `URI:${auditor}, DNS:localhost` },
    );
    const caller = callerOf(req, local);
    expect(caller).toEqual({ principal: auditor, forgedForwardedCert: true });
    expect(authzInput(req, local, caller)).toEqual({
      attributes: {
        source: {
          principal: auditor,
          address: { socketAddress: { address: '10.0.0.7', portValue: 51234 } },
        },
        destination: { principal: trading },
        request: {
          http: {
            id: 'r-1',
            method: 'DELETE',
            path: '/trading/orders/ord-1?reason=user',
            host: 'localhost:3001',
            protocol: 'HTTP/1.1',
            headers: { host: 'localhost:3001', 'x-request-id': 'r-1', accept: 'a,b' },
          },
        },
      },
    });
  });

  it('off the mesh: an unverified certificate names nobody', () => {
    const req = request({}, { authorized: false, subjectAltName: `URI:${auditor}` });
    expect(callerOf(req, local).principal).toBeUndefined();
    expect(authzInput(req, local, callerOf(req, local)).attributes.source.principal).toBe('');
  });

  it("behind the mesh: the caller is the sidecar's x-forwarded-client-cert", () => {
    const req = request({ 'x-forwarded-client-cert': `By=${trading};URI=${gateway}` });
    const caller = callerOf(req, mesh);
    expect(caller).toEqual({ principal: gateway, forgedForwardedCert: false });
    expect(authzInput(req, mesh, caller).attributes.request.http.headers).toHaveProperty(
      'x-forwarded-client-cert',
    );
    expect(callerOf(request({}), mesh).principal).toBeUndefined();
  });
});
