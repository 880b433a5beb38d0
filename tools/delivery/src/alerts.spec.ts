// The alert rules and the Grafana dashboard under k8s/base/observability: promtool checks the rules
// and runs their unit tests, and every metric they read is one the services export.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT } from './build';
import { ensurePromtool, run } from './toolchain';

const DIR = join(ROOT, 'k8s', 'base', 'observability');

interface Rule {
  alert: string;
  expr: string;
  annotations?: Record<string, string>;
}

const rule = parse(readFileSync(join(DIR, 'alerts.yaml'), 'utf8')) as {
  kind: string;
  spec: { groups: Array<{ name: string; rules: Rule[] }> };
};
const dashboard = JSON.parse(
  readFileSync(join(DIR, 'dashboards', 'finance-core.json'), 'utf8'),
) as {
  uid: string;
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
};

let promtool: string;
// First run builds promtool (a few minutes); later runs find it in the tools cache.
beforeAll(async () => {
  promtool = await ensurePromtool();
}, 20 * 60_000);

describe('Prometheus alert rules', () => {
  const work = join(ROOT, '.local', 'delivery', 'alerts');
  const rulesFile = join(work, 'finance-core.rules.yaml');

  beforeAll(() => {
    // A PrometheusRule's spec is a rules file.
    mkdirSync(work, { recursive: true });
    writeFileSync(rulesFile, stringify({ groups: rule.spec.groups }));
    copyFileSync(join(DIR, 'alerts.test.yaml'), join(work, 'alerts.test.yaml'));
  });

  it('pass promtool check rules', async () => {
    expect(rule.kind).toBe('PrometheusRule');
    const out = await run(promtool, ['check', 'rules', rulesFile]);
    expect(out.stderr).toBe('');
    const count = rule.spec.groups.reduce((n, g) => n + g.rules.length, 0);
    expect(out.stdout).toContain(`SUCCESS: ${count} rules found`);
    expect(out.code).toBe(0);
  });

  it('fire on the series of their unit tests, each alert tested', async () => {
    const out = await run(promtool, ['test', 'rules', join(work, 'alerts.test.yaml')]);
    expect(`${out.stdout}${out.stderr}`).toContain('SUCCESS');
    expect(out.code).toBe(0);
    const tests = readFileSync(join(DIR, 'alerts.test.yaml'), 'utf8');
    for (const { alert } of rule.spec.groups.flatMap((g) => g.rules)) {
      expect(tests).toContain(`alertname: ${alert}\n        exp_alerts:`);
    }
  });
});

// Metric names as the code registers them: `name: 'x'` in prom-client options, or counter('x', ...).
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path);
      } else if (entry.name.endsWith('.ts') && !/\.(int-|e2e-)?spec\.ts$/.test(entry.name)) {
        const text = readFileSync(path, 'utf8');
        for (const [, name] of text.matchAll(/\bname: '([a-z][a-z0-9_]+)'/g)) names.add(name);
        for (const [, name] of text.matchAll(/\bcounter\(\s*'([a-z][a-z0-9_]+)'/g)) names.add(name);
        for (const [, name] of text.matchAll(/\bgauge\(\s*'([a-z][a-z0-9_]+)'/g)) names.add(name);
      }
    }
  };
  walk(join(ROOT, 'libs'));
  walk(join(ROOT, 'apps'));
  return names;
}

// Label names and PromQL words, which look like metric names to the pattern below.
const NOT_METRICS = new Set(['histogram_quantile', 'label_values', 'status_code', 'rate_interval']);

function metricsIn(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/\bby \([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b/g)]
    .map(([, name]) => name.replace(/_(bucket|count|sum)$/, ''))
    .filter((name) => !NOT_METRICS.has(name));
}

describe('the rules and the dashboard read what the services export', () => {
  const exported = exportedMetrics();

  it('every metric an alert reads', () => {
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    const used = rules.flatMap((r) => [
      ...metricsIn(r.expr),
      // Metrics queried by the annotations' templates.
      ...Object.values(r.annotations ?? {}).flatMap((a) =>
        [...a.matchAll(/query "([^"]+)"|printf "([^"]+)"/g)].flatMap((m) =>
          metricsIn(m[1] ?? m[2]),
        ),
      ),
    ]);
    expect(used.length).toBeGreaterThan(10);
    expect([...new Set(used)].filter((name) => !exported.has(name))).toEqual([]);
  });

  it('every metric a dashboard panel reads, and every panel reads one', () => {
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(dashboard.uid).toBe('finance-core');
    expect(panels.filter((p) => !p.targets?.length).map((p) => p.title)).toEqual([]);
    const used = panels.flatMap((p) => p.targets!.flatMap((t) => metricsIn(t.expr)));
    expect([...new Set(used)].filter((name) => !exported.has(name))).toEqual([]);
    // The metrics the issue asks the dashboard to show.
    for (const name of [
      'trading_orders_placed_total',
      'trading_orders_rejected_total',
      'trading_fills_total',
      'tcc_transactions_finished_total',
      'tcc_transaction_duration_seconds',
      'tcc_transactions_open_by_age',
      'outbox_lag_seconds',
      'kafka_consumer_lag_messages',
      'kafka_dead_letter_messages',
      'audit_log_entries',
      'audit_checkpoint_age_seconds',
      'authz_decisions_total',
      'risk_kill_switches_engaged',
      'http_requests_total',
      'http_request_duration_seconds',
    ]) {
      expect(used).toContain(name);
    }
  });
});
