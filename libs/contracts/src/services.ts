// The bounded contexts of the system and the workload identities that call them.

export const SERVICE_NAMES = ['trading', 'settlement', 'risk', 'compliance'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

// SPIFFE ids as issued by the mesh (and by the local dev CA): spiffe://<trust domain>/ns/<ns>/sa/<account>.
export const TRUST_DOMAIN = 'cluster.local';
export const NAMESPACE = 'finance';

export const PRINCIPALS = [
  'trading-service',
  'settlement-service',
  'risk-service',
  'compliance-service',
  'order-service',
  'auditor',
  'risk-officer',
  'compliance-officer',
] as const;
export type Principal = (typeof PRINCIPALS)[number];

export function spiffeId(principal: Principal): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${NAMESPACE}/sa/${principal}`;
}
