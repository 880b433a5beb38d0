// Istio's AuthorizationPolicy semantics for the fields this repository uses, to compare the mesh's
// rules with finance.authz offline: a request is denied if a DENY policy matches, else allowed if
// the workload has no ALLOW policy or one of them matches. Any field it does not model throws, so
// a policy it cannot judge never passes silently.
export interface Request {
  workloadLabels: Record<string, string>;
  /** Without "spiffe://", as Istio writes principals. */
  principal: string;
  method: string;
  /** Path without query string. */
  path: string;
}

interface Policy {
  kind: string;
  metadata: { name: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    action?: string;
    rules?: Rule[];
  };
}

interface Rule {
  from?: Array<{ source: Record<string, string[]> }>;
  to?: Array<{ operation: Record<string, string[]> }>;
  when?: unknown;
}

const SOURCE_FIELDS = new Set(['principals']);
const OPERATION_FIELDS = new Set(['methods', 'paths', 'notPaths', 'ports']);

// Exact, "prefix*", "*suffix", "*", and the {*} (one segment) / {**} (the rest) templates.
export function pathMatches(pattern: string, path: string): boolean {
  if (pattern === '*') return true;
  if (pattern.includes('{')) {
    const regex = pattern
      .split('/')
      .map((segment) =>
        segment === '{*}'
          ? '[^/]+'
          : segment === '{**}'
            ? '.+'
            : segment.replace(/[.*+?^$()|[\]\\]/g, '\\$&'),
      )
      .join('/');
    return new RegExp(`^${regex}$`).test(path);
  }
  if (pattern.endsWith('*')) return path.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return path.endsWith(pattern.slice(1));
  return pattern === path;
}

function ruleMatches(rule: Rule, request: Request): boolean {
  if (rule.when !== undefined) throw new Error('`when` conditions are not modelled');
  const fromOk =
    rule.from === undefined ||
    rule.from.some(({ source }) =>
      Object.entries(source).every(([field, values]) => {
        if (!SOURCE_FIELDS.has(field)) throw new Error(`source.${field} is not modelled`);
        return values.includes(request.principal);
      }),
    );
  const toOk =
    rule.to === undefined ||
    rule.to.some(({ operation }) =>
      Object.entries(operation).every(([field, values]) => {
        if (!OPERATION_FIELDS.has(field)) throw new Error(`operation.${field} is not modelled`);
        switch (field) {
          case 'methods':
            return values.includes(request.method);
          case 'paths':
            return values.some((p) => pathMatches(p, request.path));
          case 'notPaths':
            return !values.some((p) => pathMatches(p, request.path));
          default:
            // TCP-only rules (ports) never match an HTTP request to the service port here.
            return false;
        }
      }),
    );
  return fromOk && toOk;
}

export function istioAllows(policies: Policy[], request: Request): boolean {
  const applicable = policies.filter((p) => {
    if (p.kind !== 'AuthorizationPolicy') return false;
    const labels = p.spec?.selector?.matchLabels;
    return !labels || Object.entries(labels).every(([k, v]) => request.workloadLabels[k] === v);
  });
  const action = (p: Policy) => p.spec?.action ?? 'ALLOW';
  for (const p of applicable) {
    if (!['ALLOW', 'DENY'].includes(action(p)))
      throw new Error(`${p.metadata.name}: ${action(p)} is not modelled`);
  }
  if (
    applicable.some(
      (p) => action(p) === 'DENY' && (p.spec?.rules ?? []).some((r) => ruleMatches(r, request)),
    )
  ) {
    return false;
  }
  const allows = applicable.filter((p) => action(p) === 'ALLOW');
  return (
    allows.length === 0 ||
    allows.some((p) => (p.spec?.rules ?? []).some((r) => ruleMatches(r, request)))
  );
}
