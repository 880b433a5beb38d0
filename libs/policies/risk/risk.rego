# Pre-trade risk checks (SEC 15c3-5, MiFID II RTS 6; seed 003's risk rules, seed 004's pre-trade
# checks): the decision risk's TCC Try takes for every order before it reserves anything. The risk
# service evaluates it in-process, compiled to Wasm (opa build -t wasm -e finance/risk/decision),
# because an OPA round trip costs more than the 1 ms budget; OPA serves the same policy for comparison.
#
# Input (built by apps/risk, never by a client): the order, the account's own limits and the firm's
# (an account's own value wins; the firm's applies to every account without one), the engaged kill
# switches, the account's exposure and position, its throttle counters (orders reserved before this
# one), its youngest identical order and the symbol's reference price (its last trade).
# Every limit is one rule with its own reason code; any violation denies.
package finance.risk

# --- exact decimals ---

# Amounts, prices and limits arrive as decimal strings and become integers of 10^-10 units, built
# from the digits (as in finance.compliance): OPA's integers are exact at any size, also in Wasm, so
# +, -, * and comparisons below are exact. Nothing is divided. Messages quote the input strings
# (format_int in Wasm stops at 32 bits).
fraction_digits := 10

one := 10000000000

decimal_pattern := `^[0-9]{1,30}(\.[0-9]{1,10})?$`

whole_pattern := `^-?[0-9]{1,30}$`

digits_to_int(d) := 0 if {
	trim_left(d, "0") == ""
} else := to_number(trim_left(d, "0"))

fixed(s) := n if {
	is_string(s)
	regex.match(decimal_pattern, s)
	parts := split(s, ".")
	fraction := concat("", array.slice(parts, 1, 2))
	padded := substring(concat("", [fraction, "0000000000"]), 0, fraction_digits)
	n := digits_to_int(concat("", [parts[0], padded]))
}

# Whole numbers (shares, counts), possibly negative (a short position).
whole(s) := n if {
	is_string(s)
	regex.match(whole_pattern, s)
	not startswith(s, "-")
	n := digits_to_int(s)
}

whole(s) := n if {
	is_string(s)
	regex.match(whole_pattern, s)
	startswith(s, "-")
	n := 0 - digits_to_int(substring(s, 1, -1))
}

# --- the order ---

order := input.order

account_id := order.accountId

currency := order.notional.currency

notional := fixed(order.notional.amount)

quantity := q if {
	q := whole(order.quantity)
	q > 0
}

price := fixed(order.price)

buy if order.side == "BUY"

sell if order.side == "SELL"

# --- limits in force ---

# An account's own value wins; the firm's applies to every account that has none. null or absent
# means no value at that level.
limit(name) := {"value": v, "scope": "ACCOUNT"} if {
	v := input.limits.account[name]
	v != null
} else := {"value": v, "scope": "FIRM"} if {
	v := input.limits.firm[name]
	v != null
}

# "of account ACC-1" or "firm-wide", for messages.
owner(l) := sprintf("of account %s", [account_id]) if {
	l.scope == "ACCOUNT"
} else := "firm-wide"

decimal_limit(name) := {"value": fixed(l.value), "text": l.value, "scope": l.scope} if {
	l := limit(name)
	fixed(l.value)
}

whole_limit(name) := {"value": whole(l.value), "text": l.value, "scope": l.scope} if {
	l := limit(name)
	whole(l.value) >= 0
}

# Restricted symbols add up: the firm's list and the account's.
restricted_by contains scope if {
	some scope, key in {"FIRM": "firm", "ACCOUNT": "account"}
	some s in input.limits[key].restrictedSymbols
	s == order.symbol
}

# --- rules: each yields {code, limit, scope, message} ---

# Kill switch: the firm, this account or this symbol stopped by a risk officer or a breaker.
covers(s) if s.scope == "FIRM"

covers(s) if {
	s.scope == "ACCOUNT"
	s.accountId == account_id
}

covers(s) if {
	s.scope == "SYMBOL"
	s.symbol == order.symbol
}

switch_target(s) := "the firm-wide kill switch" if {
	s.scope == "FIRM"
} else := sprintf("the kill switch of account %s", [s.accountId]) if {
	s.scope == "ACCOUNT"
} else := sprintf("the kill switch of symbol %s", [s.symbol])

violations contains {
	"code": "KILL_SWITCH_ACTIVE",
	"limit": "kill-switch",
	"scope": s.scope,
	"message": sprintf("%s is engaged: %s", [switch_target(s), s.reason]),
} if {
	some s in input.killSwitches
	covers(s)
}

violations contains {
	"code": "RESTRICTED_SYMBOL",
	"limit": "restricted-symbols",
	"scope": scope,
	"message": sprintf("%s is on the %s restricted list", [order.symbol, lower(scope)]),
} if {
	some scope in restricted_by
}

# The same account, symbol, side, type, price and quantity within the window: a double submission.
violations contains {
	"code": "DUPLICATE_ORDER",
	"limit": "duplicate-window-seconds",
	"scope": l.scope,
	"message": sprintf(
		"an identical order (%s %s %s at %s) was placed %s ms ago, within the duplicate-order window of %s s %s",
		[order.side, order.quantity, order.symbol, object.get(order, "price", "market"), input.duplicate.ageMs, l.text, owner(l)],
	),
} if {
	l := decimal_limit("duplicateWindowSeconds")
	age := whole(input.duplicate.ageMs)
	age * one < l.value * 1000
}

# Throttles count the orders reserved before this one, so it is the (n + 1)th of its window.
violations contains {
	"code": "ORDER_RATE_PER_SECOND",
	"limit": "orders-per-second",
	"scope": l.scope,
	"message": sprintf(
		"account %s already placed %s orders in the last second; the limit %s is %s per second",
		[account_id, input.throttle.lastSecond, owner(l), l.text],
	),
} if {
	l := whole_limit("ordersPerSecond")
	whole(input.throttle.lastSecond) + 1 > l.value
}

violations contains {
	"code": "ORDER_RATE_PER_MINUTE",
	"limit": "orders-per-minute",
	"scope": l.scope,
	"message": sprintf(
		"account %s already placed %s orders in the last minute; the limit %s is %s per minute",
		[account_id, input.throttle.lastMinute, owner(l), l.text],
	),
} if {
	l := whole_limit("ordersPerMinute")
	whole(input.throttle.lastMinute) + 1 > l.value
}

violations contains {
	"code": "ORDER_QUANTITY_LIMIT",
	"limit": "max-order-quantity",
	"scope": l.scope,
	"message": sprintf(
		"quantity %s exceeds the max order quantity %s %s",
		[order.quantity, l.text, owner(l)],
	),
} if {
	l := whole_limit("maxOrderQuantity")
	quantity > l.value
}

# Strictly above: an order of exactly the max passes.
violations contains {
	"code": "ORDER_VALUE_LIMIT",
	"limit": "max-order-value",
	"scope": l.scope,
	"message": sprintf(
		"order value %s %s exceeds the max order value %s %s %s",
		[order.notional.amount, currency, l.text, currency, owner(l)],
	),
} if {
	l := decimal_limit("maxOrderValue")
	notional > l.value
}

# Price collar: a LIMIT price more than the percentage away from the reference price (seed 004:
# |price - market| / market > 5%), compared as |price - ref| * 100 > percent * ref. Without a
# reference (no trade yet) there is nothing to compare with. MARKET orders are bounded by trading's
# own collar.
violations contains {
	"code": "PRICE_COLLAR",
	"limit": "price-collar-percent",
	"scope": l.scope,
	"message": sprintf(
		"limit price %s is more than %s%% from the reference price %s of %s (its last trade), the collar %s",
		[order.price, l.text, input.referencePrice, order.symbol, owner(l)],
	),
} if {
	order.type == "LIMIT"
	l := decimal_limit("priceCollarPercent")
	reference := fixed(input.referencePrice)
	reference > 0
	(abs(price - reference) * 100) * one > l.value * reference
}

# Position: where the symbol's position could go if this order and every open order on its side
# filled. A BUY is checked on the long side, a SELL on the short side, so an order that reduces a
# position is never refused for the size of that position.
violations contains {
	"code": "POSITION_LIMIT",
	"limit": "max-position",
	"scope": l.scope,
	"message": sprintf(
		"buying %s %s with a position of %s and %s open to buy exceeds the max position %s %s",
		[order.quantity, order.symbol, input.position.net, input.position.openBuy, l.text, owner(l)],
	),
} if {
	buy
	l := whole_limit("maxPosition")
	(whole(input.position.net) + whole(input.position.openBuy)) + quantity > l.value
}

violations contains {
	"code": "POSITION_LIMIT",
	"limit": "max-position",
	"scope": l.scope,
	"message": sprintf(
		"selling %s %s with a position of %s and %s open to sell exceeds the max position %s %s",
		[order.quantity, order.symbol, input.position.net, input.position.openSell, l.text, owner(l)],
	),
} if {
	sell
	l := whole_limit("maxPosition")
	(whole(input.position.openSell) + quantity) - whole(input.position.net) > l.value
}

# Credit limit (risk quota): the account's gross exposure in the order's currency (positions at
# their last price plus the open orders' value) with this order on top.
violations contains {
	"code": "RISK_QUOTA_EXCEEDED",
	"limit": "risk-quota",
	"scope": l.scope,
	"message": sprintf(
		"order value %s %s on top of an exposure of %s %s exceeds the risk quota %s %s %s",
		[order.notional.amount, currency, input.exposure.gross, currency, l.text, currency, owner(l)],
	),
} if {
	l := decimal_limit("quota")
	fixed(input.exposure.gross) + notional > l.value
}

# --- malformed input: fail closed, never a silent pass ---

input_problems contains "order.notional.amount must be a decimal string" if not notional

input_problems contains "order.notional.currency must be an ISO 4217 code" if {
	not regex.match(`^[A-Z]{3}$`, object.get(order, ["notional", "currency"], ""))
}

input_problems contains "order.quantity must be a whole number > 0" if not quantity

input_problems contains "order.side must be BUY or SELL" if {
	not buy
	not sell
}

input_problems contains "order.type must be LIMIT or MARKET" if not order.type in {"LIMIT", "MARKET"}

input_problems contains "order.price must be a decimal string for a LIMIT order" if {
	order.type == "LIMIT"
	not price
}

input_problems contains sprintf("%s must be a whole number", [field]) if {
	some field, value in {
		"position.net": object.get(input, ["position", "net"], null),
		"position.openBuy": object.get(input, ["position", "openBuy"], null),
		"position.openSell": object.get(input, ["position", "openSell"], null),
		"throttle.lastSecond": object.get(input, ["throttle", "lastSecond"], null),
		"throttle.lastMinute": object.get(input, ["throttle", "lastMinute"], null),
	}
	not whole(value)
}

input_problems contains "exposure.gross must be a decimal string" if {
	not fixed(object.get(input, ["exposure", "gross"], null))
}

decimal_limits := {"maxOrderValue", "quota", "priceCollarPercent", "duplicateWindowSeconds"}

whole_limits := {"maxOrderQuantity", "maxPosition", "ordersPerSecond", "ordersPerMinute"}

input_problems contains sprintf("limits.%s.%s must be a decimal string", [level, name]) if {
	some level in ["account", "firm"]
	some name in decimal_limits
	value := input.limits[level][name]
	value != null
	not fixed(value)
}

input_problems contains sprintf("limits.%s.%s must be a whole number >= 0", [level, name]) if {
	some level in ["account", "firm"]
	some name in whole_limits
	value := input.limits[level][name]
	value != null
	not whole(value) >= 0
}

violations contains {"code": "RISK_INPUT_INVALID", "limit": "input", "scope": "FIRM", "message": problem} if {
	some problem in input_problems
}

# --- the decision ---

# Which violation the order's rejection names when there are several: the most fundamental first.
priority := {
	"RISK_INPUT_INVALID": 0,
	"KILL_SWITCH_ACTIVE": 1,
	"RESTRICTED_SYMBOL": 2,
	"DUPLICATE_ORDER": 3,
	"ORDER_RATE_PER_SECOND": 4,
	"ORDER_RATE_PER_MINUTE": 5,
	"ORDER_QUANTITY_LIMIT": 6,
	"ORDER_VALUE_LIMIT": 7,
	"PRICE_COLLAR": 8,
	"POSITION_LIMIT": 9,
	"RISK_QUOTA_EXCEEDED": 10,
}

ranked := sort([[priority[v.code], v.message, v] | some v in violations])

default allow := false

allow if count(violations) == 0

decision := {"allow": true, "violations": []} if {
	allow
} else := {
	"allow": false,
	"code": ranked[0][2].code,
	"message": ranked[0][2].message,
	"violations": [v | some r in ranked; v := r[2]],
}
