# Compliance rules (seed 002 9.1): pre-trade checks the order path asks before it accepts an order
# (data.finance.compliance.decision) and post-trade surveillance over executed trades and order
# lifecycles (data.finance.compliance.alerts). Pre-trade denies; surveillance only raises alerts
# for a person to review, because each pattern below has innocent explanations.
package finance.compliance

# --- thresholds ---

# Every threshold can be set per request (input.config), per deployment (data.finance.compliance_config,
# e.g. a data.json pushed to OPA), or left at these defaults; the first that has the key wins. The
# order path must build input.config itself, never copy it from a client's request, or a client could
# lift its own limits.
defaults := {
	# Largest single order, as its notional in the order's own currency (seed 002: 1,000,000).
	"maxOrderNotional": "1000000",
	# Per-currency overrides of maxOrderNotional, e.g. {"JPY": "150000000"}.
	"maxOrderNotionalByCurrency": {},
	# Orders one user may place in any 60 minutes (seed 002: 100 per hour); the 101st is denied.
	"maxOrdersPerUserPerHour": "100",
	# Layering: an order counts as large from this many shares...
	"layeringMinQuantity": "10000",
	# ...or from this multiple of the median size of its owner's orders on the other side.
	"layeringMedianMultiple": "5",
	# Layering: cancelled at most this many seconds after it was placed.
	"layeringCancelWindowSeconds": "10",
	# Marking the close: the last minutes before the session close that are watched.
	"closeWindowMinutes": "5",
	# Marking the close: the price move into the close (percent) that makes the window suspicious.
	"closePriceMovePercent": "2",
	# Marking the close: an owner with more than this share (percent) of the window's volume.
	"closeVolumeSharePercent": "50",
}

setting(key) := v if {
	v := input.config[key]
} else := v if {
	v := data.finance.compliance_config[key]
} else := defaults[key]

# --- exact decimals ---

# Money, prices and thresholds arrive as decimal strings (libs/contracts allows up to 10 fraction
# digits). They are never floats here: a decimal becomes the integer count of 10^-10 units (fixed
# point, like minor units but one scale for every currency), built digit by digit from the string.
# to_number only ever sees a string of digits, and OPA keeps integers at arbitrary precision, so
# +, -, * and comparisons below are exact (compliance_test shows it at 1,000,000.0000000001 and at
# 30-digit amounts). No amount, price or quantity is ever divided.
fraction_digits := 10

one := 10000000000

decimal_pattern := `^[0-9]{1,30}(\.[0-9]{1,10})?$`

whole_pattern := `^[0-9]{1,30}$`

# to_number refuses leading zeros ("007"), so they go first.
digits_to_int(d) := 0 if {
	trim_left(d, "0") == ""
} else := to_number(trim_left(d, "0"))

# "1000000.01" -> 10000000100000000; undefined for anything that is not a plain decimal string.
fixed(s) := n if {
	is_string(s)
	regex.match(decimal_pattern, s)
	parts := split(s, ".")
	fraction := concat("", array.slice(parts, 1, 2))
	padded := substring(concat("", [fraction, "0000000000"]), 0, fraction_digits)
	n := digits_to_int(concat("", [parts[0], padded]))
}

# Whole quantities (shares) as strings, like libs/contracts.
whole(s) := n if {
	is_string(s)
	regex.match(whole_pattern, s)
	n := digits_to_int(s)
}

# Thresholds may be strings or JSON numbers. A whole number is written out digit for digit (so 1e6
# is 1000000); any other number as OPA prints it, which must then read as a decimal ("1e-11" does not).
as_text(v) := v if is_string(v)

as_text(v) := format_int(v, 10) if {
	is_number(v)
	v == floor(v)
}

as_text(v) := sprintf("%v", [v]) if {
	is_number(v)
	v != floor(v)
}

threshold(key) := fixed(as_text(setting(key)))

# RFC 3339 time in nanoseconds since the epoch; the pattern keeps time.parse_rfc3339_ns from erroring.
time_ns(ts) := time.parse_rfc3339_ns(ts) if {
	is_string(ts)
	regex.match(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$`, ts)
}

non_empty_string(s) if {
	is_string(s)
	s != ""
}

# The id of an input item for messages and subjects, when it has a usable one.
item_id(x, key) := x[key] if {
	is_object(x)
	non_empty_string(x[key])
}

item_label(x, key, fallback) := item_id(x, key) if {
	item_id(x, key)
} else := fallback

# =====================================================================================================
# Pre-trade: data.finance.compliance.decision
# =====================================================================================================

pre_trade if input.kind == "pre-trade"

order := input.order

currency := c if {
	c := order.notional.currency
	is_string(c)
	regex.match(`^[A-Z]{3}$`, c)
}

notional := fixed(order.notional.amount)

# A per-currency limit wins over the general one: 1,000,000 JPY is not 1,000,000 USD.
max_notional_text := as_text(setting("maxOrderNotionalByCurrency")[currency]) if {
	is_object(setting("maxOrderNotionalByCurrency"))
	setting("maxOrderNotionalByCurrency")[currency]
} else := as_text(setting("maxOrderNotional"))

max_notional := fixed(max_notional_text)

# Orders the user placed in the last 60 minutes before this one, counted by the caller.
orders_last_hour := n if {
	n := input.history.ordersByUserLastHour
	is_number(n)
	n >= 0
	n == floor(n)
}

max_orders_per_hour := threshold("maxOrdersPerUserPerHour")

order_id := item_label(order, "orderId", "<no orderId>")

user_text := item_label(order, "user", "<no user>")

# --- violations: each names its rule; any one denies ---

# Strictly above the limit: an order of exactly 1,000,000 passes, 1,000,000.01 does not.
violations contains {
	"rule": "max-order-notional",
	"message": sprintf(
		"order %s: notional %s %s exceeds the single-order limit of %s %s",
		[order_id, order.notional.amount, currency, max_notional_text, currency],
	),
} if {
	pre_trade
	notional > max_notional
}

# The count excludes this order, so it would be the (n + 1)th of the hour: with 99 before it, it is
# the 100th and passes; with 100 before it, it is the 101st and is denied.
violations contains {
	"rule": "max-orders-per-hour",
	"message": sprintf(
		"user %s placed %s orders in the last hour; order %s would exceed the limit of %s per hour",
		[user_text, format_int(orders_last_hour, 10), order_id, as_text(setting("maxOrdersPerUserPerHour"))],
	),
} if {
	pre_trade
	(orders_last_hour + 1) * one > max_orders_per_hour
}

# Fail closed: a check that cannot be evaluated denies instead of passing silently.
input_problems contains sprintf("kind must be \"pre-trade\", got %s", [json.marshal(object.get(input, "kind", null))]) if {
	not pre_trade
}

input_problems contains "order.notional.amount must be a non-negative decimal string" if {
	pre_trade
	not notional
}

input_problems contains "order.notional.currency must be an ISO 4217 code" if {
	pre_trade
	not currency
}

input_problems contains "order.user (the submitting user) is required" if {
	pre_trade
	not item_id(order, "user")
}

input_problems contains "history.ordersByUserLastHour must be a whole number >= 0" if {
	pre_trade
	not orders_last_hour
}

input_problems contains sprintf("config: limit %v for %s is not a decimal", [max_notional_text, currency]) if {
	pre_trade
	currency
	not max_notional
}

input_problems contains "config: maxOrderNotionalByCurrency must be an object of currency -> limit" if {
	pre_trade
	not is_object(setting("maxOrderNotionalByCurrency"))
}

input_problems contains "config: maxOrdersPerUserPerHour is not a decimal" if {
	pre_trade
	not max_orders_per_hour
}

violations contains {"rule": "malformed-input", "message": problem} if {
	some problem in input_problems
}

default allow := false

allow if {
	pre_trade
	count(violations) == 0
}

reason := "allowed: no compliance rule violated" if {
	allow
} else := sprintf("denied by %s", [concat(", ", sort({v.rule | some v in violations}))])

decision := {"allow": allow, "reason": reason, "violations": sort(violations)}

# =====================================================================================================
# Post-trade surveillance: data.finance.compliance.alerts
# =====================================================================================================

surveillance if input.kind == "surveillance"

side_key := {"BUY": "buy", "SELL": "sell"}

other_side := {"BUY": "SELL", "SELL": "BUY"}

# Executed trades, keyed by their position in input.trades (the tie-break for equal times).
trades[i] := {
	"id": t.tradeId,
	"symbol": t.symbol,
	"ns": time_ns(t.executedAt),
	"price": fixed(t.price),
	"priceText": t.price,
	"qty": whole(t.quantity),
	"buy": t.buy,
	"sell": t.sell,
} if {
	surveillance
	is_array(input.trades)
	some i, t in input.trades
	non_empty_string(t.tradeId)
	non_empty_string(t.symbol)
	fixed(t.price) > 0
	whole(t.quantity) > 0
	non_empty_string(t.buy.owner)
	non_empty_string(t.sell.owner)
}

# cancelledAt is optional: null when the order was not cancelled, undefined (malformed) when unreadable.
cancel_time(o) := null if {
	object.get(o, "cancelledAt", null) == null
} else := time_ns(o.cancelledAt)

orders[i] := {
	"id": o.orderId,
	"owner": o.owner,
	"side": o.side,
	"symbol": o.symbol,
	"qty": whole(o.quantity),
	"placed": time_ns(o.placedAt),
	"cancelled": cancel_time(o),
	"filled": whole(o.filledQuantity),
} if {
	surveillance
	is_array(input.orders)
	some i, o in input.orders
	non_empty_string(o.orderId)
	non_empty_string(o.owner)
	non_empty_string(o.symbol)
	o.side in {"BUY", "SELL"}
}

# --- wash trade: the same beneficial owner (or the same account) on both sides ---

# Who is on both sides, for the message; undefined when the sides differ.
same_party(t) := sprintf("owner %s", [t.buy.owner]) if {
	t.buy.owner == t.sell.owner
} else := sprintf("account %s", [t.buy.accountId]) if {
	non_empty_string(t.buy.accountId)
	t.buy.accountId == t.sell.accountId
}

alerts contains {
	"rule": "wash-trade",
	"severity": "high",
	"message": sprintf(
		"trade %s in %s: %s is on both sides (buy order %s, sell order %s); no change in beneficial ownership",
		[t.id, t.symbol, who, item_label(t.buy, "orderId", "<none>"), item_label(t.sell, "orderId", "<none>")],
	),
	"subjects": {
		"owner": t.buy.owner,
		"symbol": t.symbol,
		"orderIds": sort({id | some side in [t.buy, t.sell]; id := item_id(side, "orderId")}),
		"tradeIds": [t.id],
	},
} if {
	some t in trades
	who := same_party(t)
}

# --- layering / spoofing ---
#
# An order is a suspect when all of these hold:
#   - it was cancelled with nothing filled, at most layeringCancelWindowSeconds after it was placed;
#   - it was large: at least layeringMinQuantity shares, or at least layeringMedianMultiple times the
#     median quantity of its owner's orders on the other side of the same symbol (the side they trade);
#   - while it rested (placedAt <= executedAt <= cancelledAt) its owner traded that symbol on the
#     other side. That is the pattern: size shown on one side to move the price, filled on the other.
# One alert per owner, symbol and side, listing every suspect order and the trades on the other side.

layering_window := threshold("layeringCancelWindowSeconds")

layering_min_quantity := threshold("layeringMinQuantity")

layering_multiple := threshold("layeringMedianMultiple")

# Nanoseconds times 10 are 10^-10 s, the scale of a fixed threshold in seconds.
quickly_cancelled(o) if {
	o.cancelled != null
	o.filled == 0
	o.cancelled >= o.placed
	(o.cancelled - o.placed) * 10 <= layering_window
}

large(o) if o.qty * one >= layering_min_quantity

# Indexes built in one pass, so each suspect looks up its owner's orders and trades instead of
# scanning every one (a batch of 2,000 trades and orders evaluates in well under a second).
# (They are read whole, as all_orders / all_trades: a lookup by key would re-scan for every key.)
order_index[owner][symbol][side] contains i if {
	some i, o in orders
	owner := o.owner
	symbol := o.symbol
	side := o.side
}

trade_index[owner][symbol][side] contains i if {
	some i, t in trades
	some side, key in side_key
	owner := t[key].owner
	symbol := t.symbol
}

all_orders := order_index

all_trades := trade_index

# Median times two is the sum of the two middle values (the same value twice for an odd count).
large(o) if {
	not o.qty * one >= layering_min_quantity
	sizes := sort([orders[j].qty | some j in all_orders[o.owner][o.symbol][other_side[o.side]]])
	n := count(sizes)
	n > 0
	(2 * o.qty) * one >= layering_multiple * (sizes[floor((n - 1) / 2)] + sizes[floor(n / 2)])
}

trades_on_other_side(o) := {t.id |
	some j in all_trades[o.owner][o.symbol][other_side[o.side]]
	t := trades[j]
	o.placed <= t.ns
	t.ns <= o.cancelled
}

layering_suspects[i] := trade_ids if {
	some i, o in orders
	quickly_cancelled(o)
	trade_ids := trades_on_other_side(o)
	count(trade_ids) > 0
	large(o) # last: the median is the costly test, and few orders get this far
}

alerts contains {
	"rule": "layering",
	"severity": "high",
	"message": sprintf(
		"%s cancelled %d large %s order(s) in %s within %s s without fills (%s) while trading the other side (%s)",
		[owner, count(order_ids), side, symbol, as_text(setting("layeringCancelWindowSeconds")), concat(", ", order_ids), concat(", ", trade_ids)],
	),
	"subjects": {"owner": owner, "symbol": symbol, "orderIds": order_ids, "tradeIds": trade_ids},
} if {
	some i, _ in layering_suspects
	owner := orders[i].owner
	symbol := orders[i].symbol
	side := orders[i].side
	group := {j |
		some j, _ in layering_suspects
		orders[j].owner == owner
		orders[j].symbol == symbol
		orders[j].side == side
	}
	order_ids := sort({orders[j].id | some j in group})
	trade_ids := sort({id | some j in group; some id in layering_suspects[j]})
}

# --- marking the close (only when input.session.close is given) ---
#
# The window is the last closeWindowMinutes up to and including the close; later trades are ignored.
# For each symbol, the reference price is the last trade before the window and the closing price is
# the last trade in it. When the closing price is more than closePriceMovePercent away from the
# reference (either way), each owner who traded the symbol in the window is flagged if they were a
# party to the closing trade (they set the close) or traded more than closeVolumeSharePercent of
# the window's volume (they drove it). Without a trade before the window there is nothing to
# measure against, so no alert: send trades from the session's start.

close_ns := time_ns(input.session.close) if surveillance

close_window := threshold("closeWindowMinutes")

move_percent := threshold("closePriceMovePercent")

volume_share_percent := threshold("closeVolumeSharePercent")

# (close - t) / 10^9 s <= 60 * minutes, scaled by 10^10 on both sides.
in_close_window(t) if {
	t.ns <= close_ns
	(close_ns - t.ns) * 10 <= close_window * 60
}

before_close_window(t) if (close_ns - t.ns) * 10 > close_window * 60

# The last of a set of trades: latest time, then latest position in input.trades.
closing_trade[symbol] := trades[last[1]] if {
	some symbol in {t.symbol | some t in trades; in_close_window(t)}
	keys := sort([[u.ns, i] | some i, u in trades; u.symbol == symbol; in_close_window(u)])
	last := keys[count(keys) - 1]
}

reference_trade[symbol] := trades[last[1]] if {
	some symbol, _ in closing_trade
	keys := sort([[u.ns, i] | some i, u in trades; u.symbol == symbol; before_close_window(u)])
	last := keys[count(keys) - 1]
}

# |close - reference| / reference > percent / 100, without dividing.
close_moved(symbol) if {
	change := abs(closing_trade[symbol].price - reference_trade[symbol].price)
	(change * 100) * one > move_percent * reference_trade[symbol].price
}

party(t, owner) if t.buy.owner == owner

party(t, owner) if t.sell.owner == owner

window_trades(symbol) := [t |
	some t in trades
	t.symbol == symbol
	in_close_window(t)
]

close_findings contains [symbol, owner, "was a party to the closing trade"] if {
	some symbol, _ in closing_trade
	close_moved(symbol)
	some owner in {closing_trade[symbol].buy.owner, closing_trade[symbol].sell.owner}
}

close_findings contains [symbol, owner, sprintf("traded more than %s%% of the window's volume", [as_text(setting("closeVolumeSharePercent"))])] if {
	some symbol, _ in closing_trade
	close_moved(symbol)
	trades_in_window := window_trades(symbol)
	some owner in {o | some t in trades_in_window; some o in [t.buy.owner, t.sell.owner]}
	own := sum([t.qty | some t in trades_in_window; party(t, owner)])
	total := sum([t.qty | some t in trades_in_window])
	(own * 100) * one > volume_share_percent * total
}

alerts contains {
	"rule": "marking-the-close",
	"severity": "medium",
	"message": sprintf(
		"%s in %s: last price moved from %s to %s in the %s minutes before the close (%s), more than %s%%; %s %s",
		[
			owner, symbol, reference_trade[symbol].priceText, closing_trade[symbol].priceText,
			as_text(setting("closeWindowMinutes")), input.session.close,
			as_text(setting("closePriceMovePercent")), owner, concat(" and ", findings),
		],
	),
	"subjects": {
		"owner": owner,
		"symbol": symbol,
		"orderIds": sort({id |
			some t in owned
			some key in ["buy", "sell"]
			t[key].owner == owner
			id := t[key].orderId
		}),
		"tradeIds": sort({t.id | some t in owned}),
	},
} if {
	some [symbol, owner, _] in close_findings
	findings := sort({finding[2] |
		some finding in close_findings
		finding[0] == symbol
		finding[1] == owner
	})
	owned := [t | some t in window_trades(symbol); party(t, owner)]
}

# --- input the rules could not read: raised as alerts, so a gap in surveillance is seen ---

surveillance_problems contains [sprintf("kind must be \"surveillance\", got %s", [json.marshal(object.get(input, "kind", null))]), [], []] if {
	not surveillance
}

surveillance_problems contains [sprintf("%s must be an array", [key]), [], []] if {
	surveillance
	some key in ["trades", "orders"]
	object.get(input, key, []) != []
	not is_array(input[key])
}

surveillance_problems contains [message, [], ids] if {
	surveillance
	is_array(input.trades)
	some i, t in input.trades
	not trades[i]
	message := sprintf(
		"trade %s is malformed: needs tradeId, symbol, price > 0, quantity > 0, buy.owner, sell.owner and an RFC 3339 executedAt",
		[item_label(t, "tradeId", sprintf("at index %d", [i]))],
	)
	ids := [id | id := item_id(t, "tradeId")]
}

surveillance_problems contains [message, ids, []] if {
	surveillance
	is_array(input.orders)
	some i, o in input.orders
	not orders[i]
	message := sprintf(
		"order %s is malformed: needs orderId, owner, symbol, side BUY or SELL, whole quantity and filledQuantity, and RFC 3339 placedAt (and cancelledAt if set)",
		[item_label(o, "orderId", sprintf("at index %d", [i]))],
	)
	ids := [id | id := item_id(o, "orderId")]
}

surveillance_problems contains [sprintf("session.close %s is not an RFC 3339 time", [json.marshal(input.session.close)]), [], []] if {
	surveillance
	object.get(input, ["session", "close"], null) != null
	not close_ns
}

surveillance_keys := {
	"layeringMinQuantity", "layeringMedianMultiple", "layeringCancelWindowSeconds",
	"closeWindowMinutes", "closePriceMovePercent", "closeVolumeSharePercent",
}

surveillance_problems contains [sprintf("config: %s is not a decimal", [key]), [], []] if {
	surveillance
	some key in surveillance_keys
	not threshold(key)
}

alerts contains {
	"rule": "malformed-input",
	"severity": "medium",
	"message": message,
	"subjects": {"owner": null, "symbol": null, "orderIds": order_ids, "tradeIds": trade_ids},
} if {
	some [message, order_ids, trade_ids] in surveillance_problems
}
