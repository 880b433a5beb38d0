# Unit tests for finance.authz: every allow rule and the denials that matter.
package finance.authz_test

import data.finance.authz

id(name) := sprintf("spiffe://cluster.local/ns/finance/sa/%s", [name])

# Envoy ext_authz-shaped input; headers included so tests can show they are ignored.
request(src, dst, method, path) := {"attributes": {
	"source": {"principal": id(src)},
	"destination": {"principal": id(dst)},
	"request": {"http": {"method": method, "path": path, "headers": {}}},
}}

allowed(src, dst, method, path) if authz.allow with input as request(src, dst, method, path)

denied(src, dst, method, path) if {
	not authz.allow with input as request(src, dst, method, path)
}

reason_of(src, dst, method, path) := r if {
	r := authz.reason with input as request(src, dst, method, path)
}

# --- allow rules ---

test_trading_may_process_settlement if {
	allowed("trading-service", "settlement-service", "POST", "/settlement/process")
	reason_of("trading-service", "settlement-service", "POST", "/settlement/process") == "allowed by trading-service:settlement-process"
}

test_risk_may_read_orders_and_sub_paths if {
	allowed("risk-service", "trading-service", "GET", "/trading/orders")
	allowed("risk-service", "trading-service", "GET", "/trading/orders/ord-42")
	allowed("risk-service", "trading-service", "GET", "/trading/orders?symbol=AAPL&status=OPEN")
}

test_compliance_may_read_every_service if {
	allowed("compliance-service", "trading-service", "GET", "/trading/orders")
	allowed("compliance-service", "settlement-service", "GET", "/settlement/obligations")
	allowed("compliance-service", "risk-service", "GET", "/risk/limits")
	allowed("compliance-service", "compliance-service", "GET", "/compliance/audit-log")
}

test_order_service_may_place_read_and_cancel if {
	allowed("order-service", "trading-service", "POST", "/trading/orders")
	allowed("order-service", "trading-service", "GET", "/trading/orders")
	allowed("order-service", "trading-service", "GET", "/trading/orders/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0")
	allowed("order-service", "trading-service", "DELETE", "/trading/orders/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0")
}

test_order_service_may_replace_a_resting_order if {
	allowed("order-service", "trading-service", "PATCH", "/trading/orders/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0")
	reason_of("order-service", "trading-service", "PATCH", "/trading/orders/ord-1") == "allowed by order-service:replace-order"
	denied("order-service", "trading-service", "PATCH", "/trading/orders")
	denied("risk-service", "trading-service", "PATCH", "/trading/orders/ord-1")
	denied("order-service", "trading-service", "PATCH", "/trading/orders/a%2Fb")
}

test_trailing_slash_is_the_same_path if {
	allowed("order-service", "trading-service", "POST", "/trading/orders/")
}

test_order_service_may_open_accounts_only if {
	allowed("order-service", "trading-service", "POST", "/trading/accounts")
	reason_of("order-service", "trading-service", "POST", "/trading/accounts") == "allowed by order-service:open-accounts"
	denied("risk-service", "trading-service", "POST", "/trading/accounts")
	denied("order-service", "trading-service", "POST", "/trading/accounts/ACC-1")
}

test_settlement_reads_balances_to_reconcile if {
	allowed("settlement-service", "trading-service", "GET", "/trading/balances")
	reason_of("settlement-service", "trading-service", "GET", "/trading/balances") == "allowed by settlement-service:read-balances"
	denied("settlement-service", "trading-service", "GET", "/trading/balances/x")
	denied("settlement-service", "trading-service", "POST", "/trading/balances")
	denied("risk-service", "trading-service", "GET", "/trading/balances")
	denied("order-service", "trading-service", "GET", "/trading/balances")
}

test_settlement_posts_deposits_and_withdrawals if {
	allowed("settlement-service", "trading-service", "POST", "/trading/accounts/ACC-1/deposits")
	allowed("settlement-service", "trading-service", "POST", "/trading/accounts/ACC-1/withdrawals")
	reason_of("settlement-service", "trading-service", "POST", "/trading/accounts/ACC-1/deposits") == "allowed by settlement-service:post-transfers"
	denied("settlement-service", "trading-service", "POST", "/trading/accounts/ACC-1/transfers")
	denied("settlement-service", "trading-service", "POST", "/trading/accounts/ACC-1/deposits/x")
	denied("settlement-service", "trading-service", "POST", "/trading/accounts/..%2fx/deposits")
	denied("settlement-service", "risk-service", "POST", "/trading/accounts/ACC-1/deposits")
	denied("order-service", "trading-service", "POST", "/trading/accounts/ACC-1/withdrawals")
}

test_api_docs_for_known_callers if {
	allowed("auditor", "trading-service", "GET", "/docs")
	reason_of("risk-service", "trading-service", "GET", "/docs") == "allowed by read-api-docs"
	denied("auditor", "trading-service", "POST", "/docs")
	not authz.allow with input as {"attributes": {
		"source": {"principal": "spiffe://cluster.local/ns/finance/sa/stranger"},
		"destination": {"principal": id("trading-service")},
		"request": {"http": {"method": "GET", "path": "/docs", "headers": {}}},
	}}
}

test_market_data_for_gateway_and_risk if {
	allowed("order-service", "trading-service", "GET", "/trading/market/AAPL")
	allowed("risk-service", "trading-service", "GET", "/trading/market/AAPL/depth?levels=5")
	reason_of("risk-service", "trading-service", "GET", "/trading/market/AAPL") == "allowed by read-market-data"
	denied("auditor", "trading-service", "GET", "/trading/market/AAPL")
	denied("order-service", "trading-service", "POST", "/trading/market/AAPL")
}

test_order_service_may_read_accounts if {
	allowed("order-service", "trading-service", "GET", "/trading/accounts/ACC-1")
	reason_of("order-service", "trading-service", "GET", "/trading/accounts/ACC-1") == "allowed by order-service:read-accounts"
	denied("order-service", "trading-service", "POST", "/trading/accounts/ACC-1/deposits")
}

test_risk_officer_limits_and_kill_switch if {
	allowed("risk-officer", "risk-service", "GET", "/risk/limits")
	allowed("risk-officer", "risk-service", "GET", "/risk/limits/ACC-1")
	allowed("risk-officer", "risk-service", "PUT", "/risk/limits/ACC-1")
	allowed("risk-officer", "risk-service", "POST", "/risk/kill-switch")
	allowed("risk-officer", "risk-service", "POST", "/risk/kill-switch/AAPL")
	reason_of("risk-officer", "risk-service", "PUT", "/risk/limits/ACC-1") == "allowed by risk-officer:set-limits"
	reason_of("risk-officer", "risk-service", "POST", "/risk/kill-switch") == "allowed by risk-officer:kill-switch"
}

test_risk_officer_reads_everything_risk_serves if {
	allowed("risk-officer", "risk-service", "GET", "/risk/positions/ACC-1")
	allowed("risk-officer", "risk-service", "GET", "/risk/kill-switch")
	reason_of("risk-officer", "risk-service", "GET", "/risk/positions/ACC-1") == "allowed by risk-officer:read-risk"
	denied("risk-officer", "risk-service", "POST", "/risk/positions/ACC-1")
}

test_risk_officer_operates_admin_apis_of_every_service if {
	allowed("risk-officer", "trading-service", "GET", "/trading/admin/tcc")
	allowed("risk-officer", "trading-service", "GET", "/trading/admin/tcc/gtx-1")
	allowed("risk-officer", "trading-service", "POST", "/trading/admin/tcc/gtx-1/force-cancel")
	allowed("risk-officer", "settlement-service", "POST", "/settlement/admin/sagas/s-1/retry")
	allowed("risk-officer", "compliance-service", "GET", "/compliance/admin/sagas")
	reason_of("risk-officer", "trading-service", "POST", "/trading/admin/tcc/gtx-1/force-cancel") == "allowed by risk-officer:admin"
	denied("risk-officer", "trading-service", "DELETE", "/trading/admin/tcc/gtx-1")
	denied("risk-officer", "trading-service", "POST", "/trading/administration")
	denied("risk-officer", "risk-service", "POST", "/trading/admin/tcc/gtx-1/force-cancel")
	denied("order-service", "trading-service", "POST", "/trading/admin/tcc/gtx-1/force-cancel")
	denied("auditor", "compliance-service", "GET", "/compliance/admin/sagas")
}

test_auditor_reads_the_audit_log_and_its_proofs if {
	allowed("auditor", "compliance-service", "GET", "/compliance/audit/checkpoints/latest")
	allowed("auditor", "compliance-service", "GET", "/compliance/audit/proof/inclusion?entry=1&checkpoint=2")
	reason_of("auditor", "compliance-service", "GET", "/compliance/audit/entries") == "allowed by auditor:read-reports"
	denied("auditor", "compliance-service", "POST", "/compliance/audit/checkpoints")
	denied("auditor", "compliance-service", "GET", "/compliance/auditing")
}

test_compliance_officer_runs_compliance if {
	allowed("compliance-officer", "compliance-service", "GET", "/compliance/alerts?state=OPEN")
	reason_of("compliance-officer", "compliance-service", "GET", "/compliance/legal-holds") == "allowed by compliance-officer:read-compliance"
	allowed("compliance-officer", "compliance-service", "POST", "/compliance/alerts/al-1/review")
	allowed("compliance-officer", "compliance-service", "POST", "/compliance/legal-holds")
	allowed("compliance-officer", "compliance-service", "DELETE", "/compliance/legal-holds/hold-1")
	allowed("compliance-officer", "compliance-service", "POST", "/compliance/audit/checkpoints")
	allowed("compliance-officer", "compliance-service", "POST", "/compliance/retention/run")
	reason_of("compliance-officer", "compliance-service", "POST", "/compliance/alerts/al-1/close") == "allowed by compliance-officer:act"
	denied("compliance-officer", "compliance-service", "POST", "/compliance/reports/blotter")
	denied("compliance-officer", "compliance-service", "GET", "/compliance/admin/tcc/transactions")
	denied("compliance-officer", "compliance-service", "PUT", "/compliance/alerts/al-1")
	denied("compliance-officer", "trading-service", "GET", "/trading/orders")
	denied("compliance-officer", "risk-service", "POST", "/compliance/alerts/al-1/review")
}

test_auditor_reads_compliance_reports_only if {
	allowed("auditor", "compliance-service", "GET", "/compliance/reports")
	allowed("auditor", "compliance-service", "GET", "/compliance/reports/daily")
	denied("auditor", "compliance-service", "GET", "/compliance/alerts?state=open")
	denied("auditor", "compliance-service", "GET", "/compliance/reports-archive")
	denied("auditor", "compliance-service", "POST", "/compliance/reports/daily")
}

test_metrics_for_compliance_and_prometheus_only if {
	allowed("compliance-service", "trading-service", "GET", "/metrics")
	allowed("compliance-service", "risk-service", "GET", "/metrics")
	reason_of("compliance-service", "settlement-service", "GET", "/metrics") == "allowed by metrics-scrape"
	scrape := json.patch(request("compliance-service", "risk-service", "GET", "/metrics"), [{"op": "replace", "path": "/attributes/source/principal", "value": "spiffe://cluster.local/ns/istio-system/sa/prometheus"}])
	authz.allow with input as scrape
	not authz.allow with input as json.patch(scrape, [{"op": "replace", "path": "/attributes/request/http/path", "value": "/risk/limits"}])
	not authz.allow with input as json.patch(scrape, [{"op": "replace", "path": "/attributes/destination/principal", "value": id("auditor")}])
	denied("order-service", "trading-service", "GET", "/metrics")
	denied("compliance-service", "trading-service", "POST", "/metrics")
	denied("compliance-service", "trading-service", "GET", "/metrics/extra")
	reason_of("order-service", "trading-service", "GET", "/metrics") == "denied: no rule lets order-service GET /metrics"
}

test_health_open_to_everyone if {
	allowed("auditor", "trading-service", "GET", "/health/live")
	allowed("settlement-service", "risk-service", "GET", "/health/ready")
	authz.allow with input as {"attributes": {"request": {"http": {"method": "GET", "path": "/health/live"}}}}
	probe_reason := authz.reason with input as {"attributes": {"request": {"http": {"method": "GET", "path": "/health/ready"}}}}
	probe_reason == "allowed by health-probe"
}

test_decision_document if {
	d := authz.decision with input as request("auditor", "compliance-service", "GET", "/compliance/reports")
	d == {"allow": true, "reason": "allowed by auditor:read-reports", "caller": "auditor"}
}

# --- denials ---

test_deny_unknown_principal if {
	denied("payments-service", "trading-service", "GET", "/trading/orders")
	startswith(reason_of("payments-service", "trading-service", "GET", "/trading/orders"), "denied: unknown source principal")
}

test_deny_principal_from_other_namespace_or_trust_domain if {
	inp := request("order-service", "trading-service", "POST", "/trading/orders")
	not authz.allow with input as json.patch(inp, [{"op": "replace", "path": "/attributes/source/principal", "value": "spiffe://cluster.local/ns/dev/sa/order-service"}])
	not authz.allow with input as json.patch(inp, [{"op": "replace", "path": "/attributes/source/principal", "value": "spiffe://evil.example/ns/finance/sa/order-service"}])
	not authz.allow with input as json.patch(inp, [{"op": "replace", "path": "/attributes/source/principal", "value": "spiffe://cluster.local/ns/finance/sa/order-service/x"}])
}

# Istio's short form (as in the seed's example) is not the SPIFFE id Envoy reports.
test_deny_short_istio_principal_form if {
	inp := request("compliance-service", "trading-service", "GET", "/trading/orders")
	not authz.allow with input as json.patch(inp, [{"op": "replace", "path": "/attributes/source/principal", "value": "cluster.local/ns/finance/sa/compliance-service"}])
}

test_deny_missing_principal if {
	inp := {"attributes": {"request": {"http": {"method": "GET", "path": "/trading/orders"}}}}
	not authz.allow with input as inp
	why := authz.reason with input as inp
	why == "denied: no source principal (unauthenticated)"
	not authz.allow with input as json.patch(request("risk-service", "trading-service", "GET", "/trading/orders"), [{"op": "replace", "path": "/attributes/source/principal", "value": ""}])
}

# Identity comes from the peer certificate only, never from a header the client controls.
test_deny_principal_claimed_in_headers if {
	inp := {"attributes": {"request": {"http": {
		"method": "POST",
		"path": "/trading/orders",
		"headers": {"x-forwarded-client-cert": "URI=spiffe://cluster.local/ns/finance/sa/order-service", "x-spiffe-id": "spiffe://cluster.local/ns/finance/sa/order-service"},
	}}}}
	not authz.allow with input as inp
}

test_deny_wrong_method if {
	denied("trading-service", "settlement-service", "GET", "/settlement/process")
	denied("risk-service", "trading-service", "POST", "/trading/orders")
	denied("compliance-service", "trading-service", "POST", "/trading/orders")
	denied("compliance-service", "risk-service", "PUT", "/risk/limits/ACC-1")
	denied("order-service", "trading-service", "PUT", "/trading/orders/ord-1")
	denied("auditor", "compliance-service", "POST", "/compliance/alerts")
	denied("risk-officer", "risk-service", "DELETE", "/risk/limits/ACC-1")
	denied("risk-officer", "risk-service", "DELETE", "/risk/kill-switch")
	denied("auditor", "trading-service", "POST", "/health/live")
	reason_of("risk-service", "trading-service", "POST", "/trading/orders") == "denied: no rule lets risk-service POST /trading/orders"
}

test_deny_wrong_service if {
	denied("trading-service", "risk-service", "POST", "/risk/limits")
	denied("risk-service", "settlement-service", "GET", "/settlement/obligations")
	denied("auditor", "trading-service", "GET", "/trading/orders")
	denied("order-service", "risk-service", "GET", "/risk/limits")
	denied("risk-officer", "trading-service", "GET", "/trading/orders")
	denied("settlement-service", "trading-service", "GET", "/trading/orders")
}

# The path says trading but the request was routed to another workload.
test_deny_destination_mismatch if {
	denied("order-service", "risk-service", "POST", "/trading/orders")
	denied("compliance-service", "compliance-service", "GET", "/trading/orders")
	inp := request("trading-service", "settlement-service", "POST", "/settlement/process")
	not authz.allow with input as json.remove(inp, ["/attributes/destination"])
	reason_of("order-service", "risk-service", "POST", "/trading/orders") == "denied: destination does not serve \"/trading/orders\""
}

test_deny_prefix_tricks if {
	denied("order-service", "trading-service", "POST", "/trading/orders-evil")
	denied("risk-service", "trading-service", "GET", "/trading/orders-evil")
	denied("risk-service", "trading-service", "GET", "/trading/ordersX/1")
	denied("trading-service", "settlement-service", "POST", "/settlement/process/extra")
	denied("trading-service", "settlement-service", "POST", "/settlement/processing")
	denied("auditor", "compliance-service", "GET", "/compliance-admin/keys")
	denied("risk-officer", "risk-service", "PUT", "/risk/limits-override")
	denied("order-service", "trading-service", "DELETE", "/trading/orders")
	denied("order-service", "trading-service", "DELETE", "/trading/orders/ord-1/fills")
	denied("order-service", "trading-service", "DELETE", "/trading/orders/ord;1")
	denied("auditor", "trading-service", "GET", "/health/live-admin")
	denied("auditor", "trading-service", "GET", "/health")
	denied("order-service", "trading-service", "POST", "/Trading/orders")
}

test_deny_dot_dot_and_encoded_paths if {
	denied("risk-service", "trading-service", "GET", "/trading/orders/../../settlement/process")
	denied("order-service", "trading-service", "GET", "/trading/orders/..")
	denied("order-service", "trading-service", "GET", "/trading/orders/./1")
	denied("order-service", "trading-service", "GET", "/trading/orders/%2e%2e/admin")
	denied("order-service", "trading-service", "GET", "/trading/orders/%2E%2E%2Fadmin")
	denied("order-service", "trading-service", "GET", "/trading/orders\\..\\admin")
	denied("order-service", "trading-service", "GET", "/trading//orders")
	denied("order-service", "trading-service", "GET", "trading/orders")
	denied("compliance-service", "trading-service", "GET", "/health/../trading/orders")
	r := reason_of("risk-service", "trading-service", "GET", "/trading/orders/../../settlement/process")
	startswith(r, "denied: malformed path")
	contains(r, "dot segment")
	contains(reason_of("order-service", "trading-service", "GET", "trading/orders"), "path must start with /")
}

# Query string never changes which path matched, even when it looks like a path.
test_query_string_is_stripped if {
	denied("risk-service", "trading-service", "GET", "/trading/secrets?x=/trading/orders")
	allowed("order-service", "trading-service", "POST", "/trading/orders?dry_run=1")
	allowed("order-service", "trading-service", "DELETE", "/trading/orders/ord-1?reason=user")
}

test_deny_missing_path_or_method if {
	not authz.allow with input as {"attributes": {
		"source": {"principal": id("order-service")},
		"destination": {"principal": id("trading-service")},
		"request": {"http": {"method": "POST"}},
	}}
	why_no_path := authz.reason with input as {"attributes": {"request": {"http": {"method": "GET"}}}}
	why_no_path == "denied: request path missing"
	no_method := {"attributes": {
		"source": {"principal": id("order-service")},
		"destination": {"principal": id("trading-service")},
		"request": {"http": {"path": "/trading/orders"}},
	}}
	not authz.allow with input as no_method
	why_no_method := authz.reason with input as no_method
	why_no_method == "denied: no rule lets order-service <none> /trading/orders"
	not authz.allow with input as {}
	why_empty := authz.reason with input as {}
	why_empty == "denied: request path missing"
}

test_default_decision_is_deny if {
	d := authz.decision with input as request("nobody", "trading-service", "GET", "/trading/orders")
	d.allow == false
	d.caller == "<unknown>"
}

# Each allow rule, reached by one request and named alone in the reason.
test_every_allow_rule_names_itself if {
	reason_of("trading-service", "settlement-service", "POST", "/settlement/process") == "allowed by trading-service:settlement-process"
	reason_of("risk-service", "trading-service", "GET", "/trading/orders/ord-1") == "allowed by risk-service:read-orders"
	reason_of("compliance-service", "settlement-service", "GET", "/settlement/obligations") == "allowed by compliance-service:read-all"
	reason_of("order-service", "trading-service", "POST", "/trading/orders") == "allowed by order-service:place-order"
	reason_of("order-service", "trading-service", "GET", "/trading/orders") == "allowed by order-service:read-orders"
	reason_of("order-service", "trading-service", "DELETE", "/trading/orders/ord-1") == "allowed by order-service:cancel-order"
	reason_of("order-service", "trading-service", "GET", "/trading/accounts/ACC-1") == "allowed by order-service:read-accounts"
	reason_of("risk-officer", "risk-service", "GET", "/risk/positions") == "allowed by risk-officer:read-risk"
	reason_of("risk-officer", "risk-service", "PUT", "/risk/limits/ACC-1") == "allowed by risk-officer:set-limits"
	reason_of("risk-officer", "risk-service", "POST", "/risk/kill-switch") == "allowed by risk-officer:kill-switch"
	reason_of("risk-officer", "settlement-service", "GET", "/settlement/admin/sagas") == "allowed by risk-officer:admin"
	reason_of("auditor", "compliance-service", "GET", "/compliance/reports/daily") == "allowed by auditor:read-reports"
	reason_of("compliance-service", "trading-service", "GET", "/metrics") == "allowed by metrics-scrape"
	reason_of("auditor", "trading-service", "GET", "/health/ready") == "allowed by health-probe"
}

# Overlapping rules all show up, so the decision log says every reason a request was allowed.
test_overlapping_rules_are_all_named if {
	reason_of("risk-officer", "risk-service", "GET", "/risk/admin/tcc") == "allowed by risk-officer:admin, risk-officer:read-risk"
}
