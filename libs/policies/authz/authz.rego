# Request authorization for the finance services, evaluated on Envoy ext_authz-shaped input.
package finance.authz

# Deny unless a named rule below matches.
default allow := false

# Workload and user identities are SPIFFE ids; only the full URI form is accepted so that
# Istio's short "cluster.local/ns/..." form or a bare name cannot be smuggled in.
spiffe_prefix := "spiffe://cluster.local/ns/finance/sa/"

principals := {
	"trading-service",
	"settlement-service",
	"risk-service",
	"compliance-service",
	"order-service",
	"auditor",
	"risk-officer",
	"compliance-officer",
}

# First path segment -> the workload that serves it (used to check the destination).
service_of_segment := {
	"trading": "trading-service",
	"settlement": "settlement-service",
	"risk": "risk-service",
	"compliance": "compliance-service",
}

workloads := {w | some w in service_of_segment}

# Prometheus is not a finance workload: in the mesh it scrapes with the service account of Istio's
# Prometheus add-on, and may read /metrics and nothing else. Change this id if yours runs elsewhere.
prometheus_principal := "spiffe://cluster.local/ns/istio-system/sa/prometheus"

# Health probes are open to every caller, known or not. The services' guard answers these two without
# asking OPA (its OPEN_PROBES mirror this set), so probes keep working while OPA is down.
health_paths := {["health", "live"], ["health", "ready"]}

req := input.attributes.request.http

method := req.method

# Short name of the caller, defined only for a known principal. Headers are never consulted
# for identity: a client can set any header, only the mTLS peer identity is trustworthy.
caller := name if {
	p := source_principal
	startswith(p, spiffe_prefix)
	name := substring(p, count(spiffe_prefix), -1)
	name in principals
}

# Empty strings count as missing: a listener without mTLS reports "".
source_principal := p if {
	p := input.attributes.source.principal
	is_string(p)
	p != ""
}

callee := name if {
	p := input.attributes.destination.principal
	is_string(p)
	startswith(p, spiffe_prefix)
	name := substring(p, count(spiffe_prefix), -1)
	name in principals
}

# Path without query string or fragment; Envoy puts the query in :path.
path := split(split(req.path, "?")[0], "#")[0] if is_string(req.path)

# One trailing slash is tolerated ("/trading/orders/" == "/trading/orders").
raw_segments := split(trim_suffix(path, "/"), "/")

# Encoded dot, slash and backslash are refused outright: they exist to defeat prefix matching.
encoded_tricks := ["%2e", "%2f", "%5c"]

malformed contains "path must start with /" if {
	is_string(path)
	not startswith(path, "/")
}

malformed contains "empty path segment" if {
	some i, seg in raw_segments
	i > 0
	seg == ""
}

malformed contains "dot segment" if {
	some seg in raw_segments
	seg in {".", ".."}
}

malformed contains "encoded dot, slash or backslash" if {
	some t in encoded_tricks
	contains(lower(path), t)
}

malformed contains "backslash in path" if contains(path, "\\")

# Segments exist only for a well-formed path, so no rule can match anything else.
segments := array.slice(raw_segments, 1, count(raw_segments)) if {
	startswith(path, "/")
	count(malformed) == 0
}

# True when the path starts with all of prefix, compared segment by segment
# ("/trading/orders-evil" does not start with ["trading", "orders"]).
has_prefix(segs, prefix) if {
	count(segs) >= count(prefix)
	array.slice(segs, 0, count(prefix)) == prefix
}

# The request must be addressed to the workload that owns the path's first segment.
destination_matches if callee == service_of_segment[segments[0]]

# Order ids: UUIDs or similar opaque tokens, never anything with path syntax.
valid_id(id) if regex.match(`^[A-Za-z0-9_-]{1,64}$`, id)

# --- rules: each adds its own name so the decision says why it allowed ---

allowed_by contains "health-probe" if {
	method == "GET"
	segments in health_paths
}

# Trading asks settlement to process executed trades (seed 002 5.3).
allowed_by contains "trading-service:settlement-process" if {
	caller == "trading-service"
	method == "POST"
	segments == ["settlement", "process"]
	destination_matches
}

# Risk reads orders for positions and monitoring (seed 002 5.3, widened to sub-paths).
allowed_by contains "risk-service:read-orders" if {
	caller == "risk-service"
	method == "GET"
	has_prefix(segments, ["trading", "orders"])
	destination_matches
}

# Compliance may read from every service (seed 002 grants everything; only GET here).
allowed_by contains "compliance-service:read-all" if {
	caller == "compliance-service"
	method == "GET"
	count(segments) > 0
	destination_matches
}

allowed_by contains "order-service:place-order" if {
	caller == "order-service"
	method == "POST"
	segments == ["trading", "orders"]
	destination_matches
}

allowed_by contains "order-service:read-orders" if {
	caller == "order-service"
	method == "GET"
	has_prefix(segments, ["trading", "orders"])
	destination_matches
}

allowed_by contains "order-service:cancel-order" if {
	caller == "order-service"
	method == "DELETE"
	count(segments) == 3
	array.slice(segments, 0, 2) == ["trading", "orders"]
	valid_id(segments[2])
	destination_matches
}

# Cancel/replace: a new price or quantity for a resting order.
allowed_by contains "order-service:replace-order" if {
	caller == "order-service"
	method == "PATCH"
	count(segments) == 3
	array.slice(segments, 0, 2) == ["trading", "orders"]
	valid_id(segments[2])
	destination_matches
}

# The gateway shows clients their cash and holdings.
allowed_by contains "order-service:read-accounts" if {
	caller == "order-service"
	method == "GET"
	has_prefix(segments, ["trading", "accounts"])
	destination_matches
}

# API documents (OpenAPI) of a workload: any known caller may read them.
allowed_by contains "read-api-docs" if {
	caller
	method == "GET"
	segments == ["docs"]
	callee in workloads
}

# The gateway onboards clients: it opens their trading accounts.
allowed_by contains "order-service:open-accounts" if {
	caller == "order-service"
	method == "POST"
	segments == ["trading", "accounts"]
	destination_matches
}

# Cash and securities movements belong to settlement (cash management and custody): it posts
# deposits and withdrawals to trading accounts once the money or shares have arrived or left.
allowed_by contains "settlement-service:post-transfers" if {
	caller == "settlement-service"
	method == "POST"
	count(segments) == 4
	array.slice(segments, 0, 2) == ["trading", "accounts"]
	valid_id(segments[2])
	segments[3] in {"deposits", "withdrawals"}
	destination_matches
}

# Settlement reconciles its ledger against every account's balances in trading.
allowed_by contains "settlement-service:read-balances" if {
	caller == "settlement-service"
	method == "GET"
	segments == ["trading", "balances"]
	destination_matches
}

# Market data (quotes, depth): the gateway shows it to clients and risk watches prices.
allowed_by contains "read-market-data" if {
	caller in {"order-service", "risk-service"}
	method == "GET"
	has_prefix(segments, ["trading", "market"])
	destination_matches
}

# Limits, positions, P&L and the kill switch's state: everything risk serves, read-only.
allowed_by contains "risk-officer:read-risk" if {
	caller == "risk-officer"
	method == "GET"
	has_prefix(segments, ["risk"])
	destination_matches
}

allowed_by contains "risk-officer:set-limits" if {
	caller == "risk-officer"
	method == "PUT"
	has_prefix(segments, ["risk", "limits"])
	destination_matches
}

allowed_by contains "risk-officer:kill-switch" if {
	caller == "risk-officer"
	method == "POST"
	has_prefix(segments, ["risk", "kill-switch"])
	destination_matches
}

# Operator admin APIs (/<service>/admin/...: stuck TCC transactions and parked sagas). A stuck
# transaction holds frozen funds and reserved risk quota, so resolving it is the risk officer's
# call; each action is itself audited (OperatorActionRecorded). Compliance reads them (read-all).
allowed_by contains "risk-officer:admin" if {
	caller == "risk-officer"
	method in {"GET", "POST"}
	count(segments) >= 2
	segments[1] == "admin"
	destination_matches
}

# Auditors read compliance reports, the audit log and its proofs, and nothing else of any service.
allowed_by contains "auditor:read-reports" if {
	caller == "auditor"
	method == "GET"
	some area in {"reports", "audit"}
	has_prefix(segments, ["compliance", area])
	destination_matches
}

# The compliance officer runs compliance: reads everything it serves, reviews alerts, asks for a
# checkpoint, places and lifts legal holds, and runs retention.
allowed_by contains "compliance-officer:read-compliance" if {
	caller == "compliance-officer"
	method == "GET"
	has_prefix(segments, ["compliance"])
	not segments[1] == "admin" # operator APIs stay the risk officer's, as on every service
	destination_matches
}

allowed_by contains "compliance-officer:act" if {
	caller == "compliance-officer"
	method in {"POST", "DELETE"}
	some area in {"alerts", "legal-holds", "audit", "retention"}
	has_prefix(segments, ["compliance", area])
	destination_matches
}

# Metrics: compliance (which reads everything) and, in the mesh, Prometheus.
allowed_by contains "metrics-scrape" if {
	method == "GET"
	segments == ["metrics"]
	source_principal in {sprintf("%scompliance-service", [spiffe_prefix]), prometheus_principal}
	callee in workloads
}

allow if count(allowed_by) > 0

# --- reason: which rule allowed, or the first thing that stopped the request ---

method_text := method if is_string(method)

default method_text := "<none>"

path_given if is_string(req.path)

path_text := req.path if path_given

reason := sprintf("allowed by %s", [concat(", ", sort(allowed_by))]) if {
	allow
} else := "denied: request path missing" if {
	not path_given
} else := sprintf("denied: malformed path %q (%s)", [path_text, concat(", ", sort(malformed))]) if {
	count(malformed) > 0
} else := "denied: no source principal (unauthenticated)" if {
	not source_principal
} else := sprintf("denied: unknown source principal %q", [source_principal]) if {
	not caller
} else := sprintf("denied: destination does not serve %q", [path_text]) if {
	service_of_segment[segments[0]]
	not destination_matches
} else := sprintf("denied: no rule lets %s %s %s", [caller, method_text, path_text])

# One document for guards and for the Envoy plugin: decision, reason and who asked.
default caller_text := "<unknown>"

caller_text := caller

decision := {"allow": allow, "reason": reason, "caller": caller_text}
