// Requests the guard lets through without asking OPA, so probes keep answering while OPA is down.
// They mirror the policy's `health_paths` (a test compares them).

export const OPEN_PROBES: ReadonlyArray<{ method: 'GET'; path: string }> = [
  { method: 'GET', path: '/health/live' },
  { method: 'GET', path: '/health/ready' },
];

export function isOpenProbe(method: string, url: string): boolean {
  const path = url.split('?', 1)[0];
  return OPEN_PROBES.some((probe) => probe.method === method && probe.path === path);
}
