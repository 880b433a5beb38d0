// Who may call what: every endpoint the system has or the design names, every caller, and the
// README table that shows the policy's answer for each pair. Tests check the table against the
// policy and the running services against the table.
import { PRINCIPALS, SERVICE_NAMES, ServiceName, spiffeId } from '@finance/contracts';
import { workloadPrincipal } from '@finance/platform';
import type { AuthzInput } from './authz-input';

export interface TableCaller {
  /** Column heading in the README. */
  column: string;
  spiffeId: string;
  /** File stem of its dev certificate (tests present it). */
  certificate: string;
}

export const PROMETHEUS_SPIFFE_ID = 'spiffe://cluster.local/ns/istio-system/sa/prometheus';
export const HEALTH_PROBE_SPIFFE_ID = 'spiffe://cluster.local/ns/finance/sa/health-probe';

export const TABLE_CALLERS: readonly TableCaller[] = [
  ...PRINCIPALS.map((name) => ({ column: name, spiffeId: spiffeId(name), certificate: name })),
  { column: 'prometheus', spiffeId: PROMETHEUS_SPIFFE_ID, certificate: 'prometheus' },
  { column: 'health-probe', spiffeId: HEALTH_PROBE_SPIFFE_ID, certificate: 'health-probe' },
];

export interface AccessRow {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** As shown: `{id}` is one path segment, `{service}` each of the four, `**` any sub-path. */
  pattern: string;
  /** A concrete request for it (`{service}` still to be replaced). */
  example: string;
  servedBy: ServiceName | 'every';
  what: string;
}

export const ACCESS_ROWS: readonly AccessRow[] = [
  {
    method: 'GET',
    pattern: '/health/live',
    example: '/health/live',
    servedBy: 'every',
    what: 'liveness',
  },
  {
    method: 'GET',
    pattern: '/health/ready',
    example: '/health/ready',
    servedBy: 'every',
    what: 'readiness',
  },
  {
    method: 'GET',
    pattern: '/metrics',
    example: '/metrics',
    servedBy: 'every',
    what: 'Prometheus metrics',
  },
  {
    method: 'GET',
    pattern: '/{service}/admin/tcc/transactions/**',
    example: '/{service}/admin/tcc/transactions/gtx-1',
    servedBy: 'every',
    what: 'list and inspect TCC transactions (operator API)',
  },
  {
    method: 'POST',
    pattern: '/{service}/admin/tcc/transactions/{id}/**',
    example: '/{service}/admin/tcc/transactions/gtx-1/cancel',
    servedBy: 'every',
    what: 'retry or force-cancel a stuck TCC transaction',
  },
  {
    method: 'GET',
    pattern: '/{service}/admin/saga/sagas/**',
    example: '/{service}/admin/saga/sagas?state=PARKED',
    servedBy: 'every',
    what: 'list and inspect sagas (operator API)',
  },
  {
    method: 'POST',
    pattern: '/{service}/admin/saga/sagas/{id}/**',
    example: '/{service}/admin/saga/sagas/saga-1/resolve',
    servedBy: 'every',
    what: 'retry a saga or resolve a parked one',
  },
  {
    method: 'POST',
    pattern: '/trading/orders',
    example: '/trading/orders',
    servedBy: 'trading',
    what: 'place an order',
  },
  {
    method: 'GET',
    pattern: '/trading/orders',
    example: '/trading/orders?status=OPEN',
    servedBy: 'trading',
    what: 'list orders',
  },
  {
    method: 'GET',
    pattern: '/trading/orders/{id}',
    example: '/trading/orders/ord-1',
    servedBy: 'trading',
    what: 'one order with its fills',
  },
  {
    method: 'PATCH',
    pattern: '/trading/orders/{id}',
    example: '/trading/orders/ord-1',
    servedBy: 'trading',
    what: 'cancel/replace: new price or quantity of a resting order',
  },
  {
    method: 'DELETE',
    pattern: '/trading/orders/{id}',
    example: '/trading/orders/ord-1',
    servedBy: 'trading',
    what: 'cancel an order',
  },
  {
    method: 'GET',
    pattern: '/trading/accounts/{id}',
    example: '/trading/accounts/ACC-1',
    servedBy: 'trading',
    what: 'cash and holdings of an account',
  },
  {
    method: 'GET',
    pattern: '/docs',
    example: '/docs',
    servedBy: 'trading',
    what: 'OpenAPI document of the service',
  },
  {
    method: 'POST',
    pattern: '/trading/accounts',
    example: '/trading/accounts',
    servedBy: 'trading',
    what: 'open an account',
  },
  {
    method: 'POST',
    pattern: '/trading/accounts/{id}/deposits',
    example: '/trading/accounts/ACC-1/deposits',
    servedBy: 'trading',
    what: 'deposit cash or shares (idempotent by request id)',
  },
  {
    method: 'POST',
    pattern: '/trading/accounts/{id}/withdrawals',
    example: '/trading/accounts/ACC-1/withdrawals',
    servedBy: 'trading',
    what: 'withdraw cash or shares (idempotent by request id)',
  },
  {
    method: 'GET',
    pattern: '/trading/balances',
    example: '/trading/balances',
    servedBy: 'trading',
    what: "every account's cash and holdings and the fee income, paged (reconciliation)",
  },
  {
    method: 'GET',
    pattern: '/trading/market/**',
    example: '/trading/market/AAPL/depth',
    servedBy: 'trading',
    what: 'quote (L1) and depth (L2) of a symbol',
  },
  {
    method: 'POST',
    pattern: '/settlement/process',
    example: '/settlement/process',
    servedBy: 'settlement',
    what: 'settle executed trades',
  },
  {
    method: 'GET',
    pattern: '/settlement/clearing-quota/{id}',
    example: '/settlement/clearing-quota/ACC-1',
    servedBy: 'settlement',
    what: "an account's clearing quota, usage and open reservations",
  },
  {
    method: 'GET',
    pattern: '/settlement/cycles/**',
    example: '/settlement/cycles/2026-11-20-1',
    servedBy: 'settlement',
    what: "settlement cycles and a cycle's report (settled, failed, net movements)",
  },
  {
    method: 'GET',
    pattern: '/settlement/fails',
    example: '/settlement/fails',
    servedBy: 'settlement',
    what: 'trades that failed to settle, with their age',
  },
  {
    method: 'GET',
    pattern: '/settlement/reconciliation',
    example: '/settlement/reconciliation?date=2026-11-20',
    servedBy: 'settlement',
    what: "the ledger against trading's balances, every difference",
  },
  {
    method: 'GET',
    pattern: '/settlement/ledger/**',
    example: '/settlement/ledger/balances',
    servedBy: 'settlement',
    what: 'ledger balances and trial balance',
  },
  {
    method: 'POST',
    pattern: '/settlement/admin/ledger/**',
    example: '/settlement/admin/ledger/reversals',
    servedBy: 'settlement',
    what: 'reverse a transfer, record a cash or share movement (operator API)',
  },
  {
    method: 'GET',
    pattern: '/risk/limits',
    example: '/risk/limits',
    servedBy: 'risk',
    what: 'account and firm limits',
  },
  {
    method: 'GET',
    pattern: '/risk/limits/{id}',
    example: '/risk/limits/ACC-1',
    servedBy: 'risk',
    what: "an account's limits, usage and open reservations",
  },
  {
    method: 'PUT',
    pattern: '/risk/limits',
    example: '/risk/limits',
    servedBy: 'risk',
    what: 'set firm-wide limits',
  },
  {
    method: 'PUT',
    pattern: '/risk/limits/{id}',
    example: '/risk/limits/ACC-1',
    servedBy: 'risk',
    what: "set an account's limits",
  },
  {
    method: 'GET',
    pattern: '/risk/accounts/{id}/**',
    example: '/risk/accounts/ACC-1/positions',
    servedBy: 'risk',
    what: "an account's positions, P&L and exposure",
  },
  {
    method: 'GET',
    pattern: '/risk/exposure',
    example: '/risk/exposure',
    servedBy: 'risk',
    what: 'firm exposure, with every account',
  },
  {
    method: 'GET',
    pattern: '/risk/alerts',
    example: '/risk/alerts',
    servedBy: 'risk',
    what: 'risk alerts (breakers, large trades)',
  },
  {
    method: 'GET',
    pattern: '/risk/reports/{report}',
    example: '/risk/reports/limit-breaches',
    servedBy: 'risk',
    what: 'limit breaches, kill-switch history, alerts, exposures (JSON or CSV)',
  },
  {
    method: 'GET',
    pattern: '/risk/kill-switch',
    example: '/risk/kill-switch',
    servedBy: 'risk',
    what: 'kill switch and circuit breaker state',
  },
  {
    method: 'POST',
    pattern: '/risk/kill-switch/**',
    example: '/risk/kill-switch/release',
    servedBy: 'risk',
    what: 'engage (POST /risk/kill-switch) or release the kill switch',
  },
  {
    method: 'GET',
    pattern: '/compliance/reports/**',
    example: '/compliance/reports/audit-log',
    servedBy: 'compliance',
    what: 'auditor reports, the audit log and its verification',
  },
  {
    method: 'GET',
    pattern: '/compliance/audit/**',
    example: '/compliance/audit/checkpoints/latest',
    servedBy: 'compliance',
    what: 'audit log: checkpoints, public key, inclusion and consistency proofs, exports',
  },
  {
    method: 'POST',
    pattern: '/compliance/audit/checkpoints',
    example: '/compliance/audit/checkpoints',
    servedBy: 'compliance',
    what: 'sign a checkpoint now',
  },
  {
    method: 'POST',
    pattern: '/compliance/alerts/{id}/**',
    example: '/compliance/alerts/al-1/review',
    servedBy: 'compliance',
    what: 'review an alert: start review, close with a note',
  },
  {
    method: 'GET',
    pattern: '/compliance/legal-holds',
    example: '/compliance/legal-holds',
    servedBy: 'compliance',
    what: 'legal holds in force',
  },
  {
    method: 'POST',
    pattern: '/compliance/legal-holds',
    example: '/compliance/legal-holds',
    servedBy: 'compliance',
    what: 'place a legal hold on an account or an order',
  },
  {
    method: 'DELETE',
    pattern: '/compliance/legal-holds/{id}',
    example: '/compliance/legal-holds/hold-1',
    servedBy: 'compliance',
    what: 'lift a legal hold',
  },
  {
    method: 'POST',
    pattern: '/compliance/retention/run',
    example: '/compliance/retention/run',
    servedBy: 'compliance',
    what: 'archive, verify and drop partitions past retention now',
  },
  {
    method: 'GET',
    pattern: '/compliance/alerts',
    example: '/compliance/alerts',
    servedBy: 'compliance',
    what: 'compliance alerts',
  },
];

/** One concrete request of a row against one service. */
export interface AccessCase {
  row: AccessRow;
  service: ServiceName;
  method: AccessRow['method'];
  path: string;
}

export function rowKey(row: Pick<AccessRow, 'method' | 'pattern'>): string {
  return `${row.method} ${row.pattern}`;
}

export function expandRow(row: AccessRow): AccessCase[] {
  const services = row.servedBy === 'every' ? SERVICE_NAMES : [row.servedBy];
  return services.map((service) => ({
    row,
    service,
    method: row.method,
    path: row.example.replace('{service}', service),
  }));
}

export const TABLE_BEGIN = '<!-- who-may-call-what: begin (npm run authz:table) -->';
export const TABLE_END = '<!-- who-may-call-what: end -->';

const YES = '✓';
const NO = '–';

/** The markdown table; `allowed(row, caller)` is the policy's answer. */
export function renderAccessTable(
  allowed: (row: AccessRow, caller: TableCaller) => boolean,
): string {
  const header = ['request', 'served by', ...TABLE_CALLERS.map((c) => c.column), 'what'];
  const lines = [header, header.map(() => '---')].map((cells) => `| ${cells.join(' | ')} |`);
  for (const row of ACCESS_ROWS) {
    const cells = [
      `\`${row.method} ${row.pattern}\``,
      row.servedBy === 'every' ? 'every service' : row.servedBy,
      ...TABLE_CALLERS.map((caller) => (allowed(row, caller) ? YES : NO)),
      row.what,
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Row key -> the columns marked allowed, read back from the README between the markers. */
export function parseAccessTable(readme: string): Map<string, Set<string>> {
  const begin = readme.indexOf(TABLE_BEGIN);
  const end = readme.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error('README has no who-may-call-what table markers');
  const rows = readme
    .slice(begin + TABLE_BEGIN.length, end)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
  const [header, , ...body] = rows;
  if (!header) throw new Error('the who-may-call-what table is empty');
  const table = new Map<string, Set<string>>();
  for (const cells of body) {
    const request = cells[0].replace(/`/g, '');
    const allowed = new Set<string>();
    header.forEach((column, i) => {
      if (cells[i] === YES) allowed.add(column);
    });
    table.set(request, allowed);
  }
  return table;
}

/** The authorization input the guard of `c.service` builds when `caller` sends `c`. */
export function caseInput(c: AccessCase, caller: Pick<TableCaller, 'spiffeId'>): AuthzInput {
  return {
    attributes: {
      source: {
        principal: caller.spiffeId,
        address: { socketAddress: { address: '127.0.0.1', portValue: 0 } },
      },
      destination: { principal: workloadPrincipal(c.service) },
      request: {
        http: {
          method: c.method,
          path: c.path,
          host: 'localhost',
          protocol: 'HTTP/1.1',
          headers: {},
        },
      },
    },
  };
}

export interface AccessDecisions {
  /** Row key (`GET /trading/orders`) -> columns the policy allows. */
  allowed: Map<string, Set<string>>;
  markdown: string;
}

/**
 * Asks the policy (through `allows`, e.g. `opa eval`) about every row and caller. A row served by every service must get the same
 * answer on each of them, or it cannot be one line of the table.
 */
export async function computeAccessTable(
  allows: (inputs: AuthzInput[]) => Promise<boolean[]>,
): Promise<AccessDecisions> {
  const cases = ACCESS_ROWS.flatMap((row) =>
    expandRow(row).flatMap((c) => TABLE_CALLERS.map((caller) => ({ c, caller }))),
  );
  const answers = await allows(cases.map(({ c, caller }) => caseInput(c, caller)));
  const byCell = new Map<string, Set<boolean>>();
  cases.forEach(({ c, caller }, i) => {
    const key = `${rowKey(c.row)}\n${caller.column}`;
    byCell.set(key, (byCell.get(key) ?? new Set()).add(answers[i]));
  });
  const allowed = new Map<string, Set<string>>();
  const cell = (row: AccessRow, column: string): boolean => {
    const seen = byCell.get(`${rowKey(row)}\n${column}`) ?? new Set();
    if (seen.size !== 1) {
      throw new Error(`${rowKey(row)} for ${column}: the policy answers differently per service`);
    }
    return seen.has(true);
  };
  for (const row of ACCESS_ROWS) {
    allowed.set(
      rowKey(row),
      new Set(TABLE_CALLERS.filter((c) => cell(row, c.column)).map((c) => c.column)),
    );
  }
  return { allowed, markdown: renderAccessTable((row, caller) => cell(row, caller.column)) };
}
