# Unit tests for finance.compliance: every rule fires when it should and stays quiet when it should not,
# with the edges the rules are defined by (exactly the limit, the 100th order, the end of a window).
package finance.compliance_test

import data.finance.compliance

# =====================================================================================================
# Pre-trade
# =====================================================================================================

# A valid pre-trade input: `before` orders by the same user in the last hour.
pre_trade(amount, currency, before) := {
	"kind": "pre-trade",
	"order": {
		"orderId": "ord-1",
		"accountId": "ACC-1",
		"owner": "alice",
		"user": "alice-web",
		"symbol": "AAPL",
		"side": "BUY",
		"type": "LIMIT",
		"price": "150.00",
		"quantity": "10",
		"notional": {"amount": amount, "currency": currency},
	},
	"history": {"ordersByUserLastHour": before},
}

decision_for(inp) := d if {
	d := compliance.decision with input as inp
}

rules_of(inp) := {v.rule | some v in decision_for(inp).violations}

allowed(inp) if decision_for(inp).allow == true

denied_by(inp, rule) if {
	decision_for(inp).allow == false
	rule in rules_of(inp)
}

with_config(inp, config) := object.union(inp, {"config": config})

test_order_of_exactly_the_limit_is_allowed if {
	allowed(pre_trade("1000000", "USD", 0))
	allowed(pre_trade("1000000.00", "USD", 0))
	allowed(pre_trade("1000000.0000000000", "USD", 0))
	allowed(pre_trade("0001000000.00", "USD", 0))
	d := decision_for(pre_trade("999999.99", "USD", 0))
	d == {"allow": true, "reason": "allowed: no compliance rule violated", "violations": []}
}

test_order_above_the_limit_is_denied if {
	d := decision_for(pre_trade("1000000.01", "USD", 0))
	d.allow == false
	d.reason == "denied by max-order-notional"
	d.violations == [{
		"rule": "max-order-notional",
		"message": "order ord-1: notional 1000000.01 USD exceeds the single-order limit of 1000000 USD",
	}]
}

# A float64 holds about 16 significant digits: 1000000.0000000001 would round to 1000000 and pass.
test_notional_is_compared_exactly_not_as_a_float if {
	denied_by(pre_trade("1000000.0000000001", "USD", 0), "max-order-notional")
	limit := {"maxOrderNotional": "123456789012345678901234567890"}
	allowed(with_config(pre_trade("123456789012345678901234567890", "USD", 0), limit))
	allowed(with_config(pre_trade("123456789012345678901234567889.9999999999", "USD", 0), limit))
	denied_by(with_config(pre_trade("123456789012345678901234567890.0000000001", "USD", 0), limit), "max-order-notional")
}

test_100th_order_in_the_hour_is_allowed_the_101st_denied if {
	allowed(pre_trade("100.00", "USD", 99))
	d := decision_for(pre_trade("100.00", "USD", 100))
	d.allow == false
	d.violations == [{
		"rule": "max-orders-per-hour",
		"message": "user alice-web placed 100 orders in the last hour; order ord-1 would exceed the limit of 100 per hour",
	}]
	denied_by(pre_trade("100.00", "USD", 5000), "max-orders-per-hour")
}

test_both_limits_are_reported_together if {
	d := decision_for(pre_trade("2000000", "USD", 100))
	d.reason == "denied by max-order-notional, max-orders-per-hour"
	count(d.violations) == 2
}

test_thresholds_from_input_config if {
	config := {"maxOrderNotional": "500", "maxOrdersPerUserPerHour": 10}
	allowed(with_config(pre_trade("500.00", "USD", 9), config))
	denied_by(with_config(pre_trade("500.01", "USD", 0), config), "max-order-notional")
	denied_by(with_config(pre_trade("1", "USD", 10), config), "max-orders-per-hour")
}

test_thresholds_from_data_and_input_wins if {
	deployed := {"maxOrderNotional": "250000", "maxOrdersPerUserPerHour": "20"}
	denied_by(pre_trade("250000.01", "USD", 0), "max-order-notional") with data.finance.compliance_config as deployed
	denied_by(pre_trade("1", "USD", 20), "max-orders-per-hour") with data.finance.compliance_config as deployed
	allowed(pre_trade("250000", "USD", 19)) with data.finance.compliance_config as deployed
	allowed(with_config(pre_trade("250000.01", "USD", 0), {"maxOrderNotional": "300000"})) with data.finance.compliance_config as deployed
}

test_per_currency_limit_wins_over_the_general_one if {
	config := {"maxOrderNotionalByCurrency": {"JPY": "150000000"}}
	allowed(with_config(pre_trade("150000000", "JPY", 0), config))
	d := decision_for(with_config(pre_trade("150000001", "JPY", 0), config))
	d.violations[0].message == "order ord-1: notional 150000001 JPY exceeds the single-order limit of 150000000 JPY"
	denied_by(with_config(pre_trade("1000000.01", "USD", 0), config), "max-order-notional")
}

test_unreadable_input_is_denied_not_passed if {
	# Wrong kind, and the surveillance input sent to the pre-trade decision.
	denied_by(object.union(pre_trade("1", "USD", 0), {"kind": "surveillance"}), "malformed-input")
	denied_by({}, "malformed-input")

	# Money that is not a plain non-negative decimal string.
	every amount in [1000, "-5", "1e6", "1,000", "", "1.", "0.00000000001", null] {
		denied_by(pre_trade(amount, "USD", 0), "malformed-input")
	}
}

test_unreadable_currency_user_or_history_is_denied if {
	denied_by(pre_trade("1", "usd", 0), "malformed-input")
	denied_by(json.remove(pre_trade("1", "USD", 0), ["order/user"]), "malformed-input")
	denied_by(json.remove(pre_trade("1", "USD", 0), ["history"]), "malformed-input")
	every before in [-1, 1.5, "3", null] {
		denied_by(pre_trade("1", "USD", before), "malformed-input")
	}
}

test_unreadable_config_is_denied if {
	# A number with more than 10 fraction digits cannot be a fixed-point threshold.
	denied_by(with_config(pre_trade("1", "USD", 0), {"maxOrderNotional": 0.00000000001}), "malformed-input")
	denied_by(with_config(pre_trade("1", "USD", 0), {"maxOrderNotionalByCurrency": {"USD": "lots"}}), "malformed-input")
	denied_by(with_config(pre_trade("1", "USD", 0), {"maxOrderNotionalByCurrency": "USD=5"}), "malformed-input")
	denied_by(with_config(pre_trade("1", "USD", 0), {"maxOrdersPerUserPerHour": "ten"}), "malformed-input")
	allowed(with_config(pre_trade("1000000", "USD", 0), {"maxOrderNotional": 1e6}))
	denied_by(with_config(pre_trade("1000000.01", "USD", 0), {"maxOrderNotional": 1000000}), "max-order-notional")
	allowed(with_config(pre_trade("2.5", "USD", 0), {"maxOrderNotional": 2.5}))
	denied_by(with_config(pre_trade("2.51", "USD", 0), {"maxOrderNotional": 2.5}), "max-order-notional")
}

test_malformed_messages_name_the_problem if {
	d := decision_for(json.remove(pre_trade("x", "USD", 0), ["order/user"]))
	d.reason == "denied by malformed-input"
	{v.message | some v in d.violations} == {
		"order.notional.amount must be a non-negative decimal string",
		"order.user (the submitting user) is required",
	}
}

# =====================================================================================================
# Surveillance
# =====================================================================================================

trade(id, symbol, price, qty, at, buyer, seller) := {
	"tradeId": id,
	"symbol": symbol,
	"price": price,
	"quantity": qty,
	"currency": "USD",
	"executedAt": at,
	"buy": {"owner": buyer, "accountId": concat("-", ["ACC", buyer]), "orderId": concat("-", ["b", id])},
	"sell": {"owner": seller, "accountId": concat("-", ["ACC", seller]), "orderId": concat("-", ["s", id])},
}

# cancelled is null for an order that was not cancelled.
order_summary(id, owner, side, qty, placed, cancelled, filled) := {
	"orderId": id,
	"owner": owner,
	"side": side,
	"symbol": "AAPL",
	"quantity": qty,
	"price": "150.00",
	"placedAt": placed,
	"cancelledAt": cancelled,
	"filledQuantity": filled,
}

surveil(trades, orders) := {"kind": "surveillance", "trades": trades, "orders": orders}

alerts_for(inp) := a if {
	a := compliance.alerts with input as inp
}

alerts_of(inp, rule) := {a | some a in alerts_for(inp); a.rule == rule}

rules_in(inp) := {a.rule | some a in alerts_for(inp)}

# --- wash trade ---

test_same_owner_on_both_sides_is_a_wash_trade if {
	inp := surveil([trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "mallory", "mallory")], [])
	alerts_for(inp) == {{
		"rule": "wash-trade",
		"severity": "high",
		"message": "trade T1 in AAPL: owner mallory is on both sides (buy order b-T1, sell order s-T1); no change in beneficial ownership",
		"subjects": {"owner": "mallory", "symbol": "AAPL", "orderIds": ["b-T1", "s-T1"], "tradeIds": ["T1"]},
	}}
}

test_same_account_on_both_sides_is_a_wash_trade if {
	t := trade("T2", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "mallory", "mallory-2")
	inp := surveil([json.patch(t, [{"op": "replace", "path": "/sell/accountId", "value": "ACC-mallory"}])], [])
	{a.message | some a in alerts_for(inp)} == {"trade T2 in AAPL: account ACC-mallory is on both sides (buy order b-T2, sell order s-T2); no change in beneficial ownership"}
}

test_wash_trade_without_order_ids_still_alerts if {
	t := json.remove(trade("T3", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "mallory", "mallory"), ["buy/orderId", "sell/orderId"])
	some a in alerts_of(surveil([t], []), "wash-trade")
	a.subjects.orderIds == []
	contains(a.message, "buy order <none>, sell order <none>")
}

test_trade_between_two_owners_is_not_a_wash_trade if {
	inp := surveil([trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "alice", "bob")], [])
	alerts_for(inp) == set()
}

# --- layering / spoofing ---

# mallory buys 100 (filled in T1 while her 20,000-share sell rests) and cancels the sell after `cancel`.
layering_case(big_qty, cancel, filled, trade_at) := surveil(
	[trade("T1", "AAPL", "150.00", "100", trade_at, "mallory", "bob")],
	[
		order_summary("BUY-1", "mallory", "BUY", "100", "2026-03-02T13:59:59Z", null, "100"),
		order_summary("SELL-1", "mallory", "SELL", big_qty, "2026-03-02T14:00:00Z", cancel, filled),
	],
)

test_large_order_cancelled_quickly_while_trading_the_other_side_is_layering if {
	inp := layering_case("20000", "2026-03-02T14:00:08Z", "0", "2026-03-02T14:00:05Z")
	alerts_for(inp) == {{
		"rule": "layering",
		"severity": "high",
		"message": "mallory cancelled 1 large SELL order(s) in AAPL within 10 s without fills (SELL-1) while trading the other side (T1)",
		"subjects": {"owner": "mallory", "symbol": "AAPL", "orderIds": ["SELL-1"], "tradeIds": ["T1"]},
	}}
}

test_cancel_at_exactly_the_window_is_layering_after_it_is_not if {
	rules_in(layering_case("20000", "2026-03-02T14:00:10Z", "0", "2026-03-02T14:00:05Z")) == {"layering"}
	alerts_for(layering_case("20000", "2026-03-02T14:00:10.000000001Z", "0", "2026-03-02T14:00:05Z")) == set()
	alerts_for(layering_case("20000", "2026-03-02T14:05:00Z", "0", "2026-03-02T14:00:05Z")) == set()
}

test_layering_needs_no_fill_a_cancel_and_a_trade_while_it_rested if {
	# Partly filled: a real order.
	alerts_for(layering_case("20000", "2026-03-02T14:00:08Z", "1", "2026-03-02T14:00:05Z")) == set()

	# Never cancelled.
	alerts_for(layering_case("20000", null, "0", "2026-03-02T14:00:05Z")) == set()

	# The other-side trade came after the cancel, or before the order was placed.
	alerts_for(layering_case("20000", "2026-03-02T14:00:08Z", "0", "2026-03-02T14:00:09Z")) == set()
	alerts_for(layering_case("20000", "2026-03-02T14:00:08Z", "0", "2026-03-02T13:59:59.5Z")) == set()

	# A cancel time before the placement is nonsense, not a quick cancel.
	alerts_for(layering_case("20000", "2026-03-02T13:59:00Z", "0", "2026-03-02T14:00:05Z")) == set()
}

test_trading_the_same_side_or_another_owners_trade_is_not_layering if {
	same_side := surveil(
		[trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:05Z", "bob", "mallory")],
		[order_summary("SELL-1", "mallory", "SELL", "20000", "2026-03-02T14:00:00Z", "2026-03-02T14:00:08Z", "0")],
	)
	alerts_for(same_side) == set()
	someone_else := surveil(
		[trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:05Z", "carol", "bob")],
		[order_summary("SELL-1", "mallory", "SELL", "20000", "2026-03-02T14:00:00Z", "2026-03-02T14:00:08Z", "0")],
	)
	alerts_for(someone_else) == set()
	other_symbol := surveil(
		[trade("T1", "MSFT", "150.00", "100", "2026-03-02T14:00:05Z", "mallory", "bob")],
		[order_summary("SELL-1", "mallory", "SELL", "20000", "2026-03-02T14:00:00Z", "2026-03-02T14:00:08Z", "0")],
	)
	alerts_for(other_symbol) == set()
}

# Without the absolute size, "large" is 5x the median of the owner's other-side orders: 100 and 120
# have a median of 110, so 550 is large and 549 is not.
median_case(big_qty) := with_config(
	surveil(
		[trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:05Z", "mallory", "bob")],
		[
			order_summary("BUY-1", "mallory", "BUY", "100", "2026-03-02T13:59:59Z", null, "100"),
			order_summary("BUY-2", "mallory", "BUY", "120", "2026-03-02T13:59:58Z", null, "0"),
			order_summary("SELL-1", "mallory", "SELL", big_qty, "2026-03-02T14:00:00Z", "2026-03-02T14:00:08Z", "0"),
		],
	),
	{"layeringMinQuantity": "1000000"},
)

test_large_relative_to_the_owners_median if {
	rules_in(median_case("550")) == {"layering"}
	alerts_for(median_case("549")) == set()

	# Below the absolute size by default, with no other-side orders to compare with: not large.
	small := layering_case("9999", "2026-03-02T14:00:08Z", "0", "2026-03-02T14:00:05Z")
	rules_in(small) == {"layering"}
	alone := json.remove(small, ["orders/0"])
	alerts_for(alone) == set()
	rules_in(json.patch(alone, [{"op": "replace", "path": "/orders/0/quantity", "value": "10000"}])) == {"layering"}
}

test_layering_window_and_sizes_are_configurable if {
	inp := layering_case("20000", "2026-03-02T14:00:08Z", "0", "2026-03-02T14:00:05Z")
	alerts_for(with_config(inp, {"layeringCancelWindowSeconds": "7.5"})) == set()
	rules_in(with_config(inp, {"layeringCancelWindowSeconds": 8})) == {"layering"}
	alerts_for(with_config(inp, {"layeringMinQuantity": "20001", "layeringMedianMultiple": "200.01"})) == set()
	rules_in(with_config(inp, {"layeringMinQuantity": "20001", "layeringMedianMultiple": "200"})) == {"layering"}
}

test_layering_orders_of_one_owner_and_side_make_one_alert if {
	inp := surveil(
		[
			trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:05Z", "mallory", "bob"),
			trade("T2", "AAPL", "150.01", "100", "2026-03-02T14:00:06Z", "mallory", "carol"),
		],
		[
			order_summary("SELL-1", "mallory", "SELL", "20000", "2026-03-02T14:00:00Z", "2026-03-02T14:00:05.5Z", "0"),
			order_summary("SELL-2", "mallory", "SELL", "30000", "2026-03-02T14:00:01Z", "2026-03-02T14:00:07Z", "0"),
		],
	)
	some a in alerts_for(inp)
	count(alerts_for(inp)) == 1
	a.subjects == {"owner": "mallory", "symbol": "AAPL", "orderIds": ["SELL-1", "SELL-2"], "tradeIds": ["T1", "T2"]}
	contains(a.message, "cancelled 2 large SELL order(s)")
}

# --- marking the close ---

session_close := "2026-03-02T16:00:00Z"

# Reference 100.00 before the window; carol buys twice in it, the second (from dave) is the close.
close_trades(close_price) := [
	trade("R1", "AAPL", "100.00", "100", "2026-03-02T15:50:00Z", "alice", "bob"),
	trade("W1", "AAPL", "101.00", "100", "2026-03-02T15:58:00Z", "carol", "bob"),
	trade("W2", "AAPL", close_price, "100", "2026-03-02T15:59:30Z", "carol", "dave"),
]

with_close(inp, close) := object.union(inp, {"session": {"close": close}})

test_owner_setting_a_close_that_moved_more_than_the_limit_is_marking_the_close if {
	inp := with_close(surveil(close_trades("103.00"), []), session_close)
	carol := {a | some a in alerts_of(inp, "marking-the-close"); a.subjects.owner == "carol"}
	carol == {{
		"rule": "marking-the-close",
		"severity": "medium",
		"message": "carol in AAPL: last price moved from 100.00 to 103.00 in the 5 minutes before the close (2026-03-02T16:00:00Z), more than 2%; carol traded more than 50% of the window's volume and was a party to the closing trade",
		"subjects": {"owner": "carol", "symbol": "AAPL", "orderIds": ["b-W1", "b-W2"], "tradeIds": ["W1", "W2"]},
	}}

	# dave sold into the closing trade; bob traded half the window (not more) and not at the close.
	{a.subjects.owner | some a in alerts_of(inp, "marking-the-close")} == {"carol", "dave"}
}

test_a_close_that_moved_down_counts_too if {
	inp := with_close(surveil(close_trades("97.99"), []), session_close)
	{a.subjects.owner | some a in alerts_of(inp, "marking-the-close")} == {"carol", "dave"}
}

test_a_move_of_exactly_the_limit_is_not_marking_the_close if {
	alerts_for(with_close(surveil(close_trades("102.00"), []), session_close)) == set()
	rules_in(with_close(surveil(close_trades("102.0000000001"), []), session_close)) == {"marking-the-close"}
}

test_no_session_close_means_no_marking_the_close_alert if {
	alerts_for(surveil(close_trades("150.00"), [])) == set()
	alerts_for(object.union(surveil(close_trades("150.00"), []), {"session": {}})) == set()
	alerts_for(with_close(surveil(close_trades("150.00"), []), null)) == set()
}

test_trades_after_the_close_and_before_the_window_do_not_count if {
	late := array.concat(close_trades("100.50"), [trade("L1", "AAPL", "150.00", "100", "2026-03-02T16:00:01Z", "mallory", "bob")])
	alerts_for(with_close(surveil(late, []), session_close)) == set()

	# Without a trade before the window there is no reference price.
	no_reference := array.slice(close_trades("150.00"), 1, 3)
	alerts_for(with_close(surveil(no_reference, []), session_close)) == set()

	# A trade exactly closeWindowMinutes before the close is in the window (and so is the close).
	edge := [
		trade("R1", "AAPL", "100.00", "100", "2026-03-02T15:54:59.999Z", "alice", "bob"),
		trade("W1", "AAPL", "110.00", "100", "2026-03-02T15:55:00Z", "carol", "bob"),
		trade("W2", "AAPL", "110.00", "100", "2026-03-02T16:00:00Z", "alice", "bob"),
	]
	{a.subjects.owner | some a in alerts_of(with_close(surveil(edge, []), session_close), "marking-the-close")} == {"alice", "bob"}

	# A millisecond later W1 falls before the window and becomes the reference: no move, no alert.
	alerts_for(with_close(surveil(edge, []), "2026-03-02T16:00:00.001Z")) == set()
}

test_dominating_the_window_volume_is_marking_the_close if {
	# eve buys 300 of the window's 400 but is not in the closing trade.
	trades := [
		trade("R1", "AAPL", "100.00", "100", "2026-03-02T15:50:00Z", "alice", "bob"),
		trade("W1", "AAPL", "102.50", "300", "2026-03-02T15:57:00Z", "eve", "frank"),
		trade("W2", "AAPL", "103.00", "100", "2026-03-02T15:59:00Z", "carol", "dave"),
	]
	inp := with_close(surveil(trades, []), session_close)
	some a in alerts_of(inp, "marking-the-close")
	a.subjects.owner == "eve"
	endswith(a.message, "eve traded more than 50% of the window's volume")

	# With a higher share required, eve is no longer flagged; the closing trade's parties still are.
	owners := {b.subjects.owner | some b in alerts_of(with_config(inp, {"closeVolumeSharePercent": "75"}), "marking-the-close")}
	owners == {"carol", "dave"}
}

test_close_window_and_move_are_configurable if {
	inp := with_close(surveil(close_trades("103.00"), []), session_close)
	alerts_for(with_config(inp, {"closePriceMovePercent": "3"})) == set()
	count(alerts_for(with_config(inp, {"closePriceMovePercent": "2.99"}))) == 2

	# A 1-minute window holds only W2; W1 at 101.00 becomes the reference, a 1.98% move.
	alerts_for(with_config(inp, {"closeWindowMinutes": 1})) == set()
	count(alerts_for(with_config(inp, {"closeWindowMinutes": 1, "closePriceMovePercent": "1.9"}))) == 2
}

test_symbols_are_measured_separately if {
	trades := array.concat(close_trades("100.50"), [
		trade("M1", "MSFT", "400.00", "10", "2026-03-02T15:00:00Z", "alice", "bob"),
		trade("M2", "MSFT", "420.00", "10", "2026-03-02T15:59:00Z", "gina", "bob"),
	])
	alerts := alerts_of(with_close(surveil(trades, []), session_close), "marking-the-close")
	{[a.subjects.symbol, a.subjects.owner] | some a in alerts} == {["MSFT", "gina"], ["MSFT", "bob"]}
}

# --- clean activity and unreadable input ---

test_ordinary_activity_raises_no_alert if {
	inp := with_close(
		surveil(
			array.concat(close_trades("100.50"), [trade("T9", "AAPL", "100.40", "50", "2026-03-02T14:00:05Z", "alice", "bob")]),
			[
				order_summary("O1", "alice", "BUY", "50", "2026-03-02T14:00:00Z", null, "50"),
				order_summary("O2", "alice", "SELL", "40", "2026-03-02T14:00:01Z", "2026-03-02T14:00:02Z", "0"),
			],
		),
		session_close,
	)
	alerts_for(inp) == set()
}

input_alert_messages(inp) := {a.message | some a in alerts_of(inp, "malformed-input")}

test_unreadable_trades_and_orders_are_alerts_not_silence if {
	bad_time := json.patch(trade("T1", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "a", "b"), [{"op": "replace", "path": "/executedAt", "value": "2026-13-40T14:00:00Z"}])
	float_price := json.patch(trade("T2", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "a", "b"), [{"op": "replace", "path": "/price", "value": 150.5}])
	no_owner := json.remove(trade("T3", "AAPL", "150.00", "100", "2026-03-02T14:00:00Z", "a", "b"), ["sell/owner"])
	inp := surveil([bad_time, float_price, no_owner, "junk"], [])
	input_alert_messages(inp) == {
		"trade T1 is malformed: needs tradeId, symbol, price > 0, quantity > 0, buy.owner, sell.owner and an RFC 3339 executedAt",
		"trade T2 is malformed: needs tradeId, symbol, price > 0, quantity > 0, buy.owner, sell.owner and an RFC 3339 executedAt",
		"trade T3 is malformed: needs tradeId, symbol, price > 0, quantity > 0, buy.owner, sell.owner and an RFC 3339 executedAt",
		"trade at index 3 is malformed: needs tradeId, symbol, price > 0, quantity > 0, buy.owner, sell.owner and an RFC 3339 executedAt",
	}
	{a.subjects.tradeIds | some a in alerts_of(inp, "malformed-input")} == {["T1"], ["T2"], ["T3"], []}
}

test_unreadable_orders_are_alerts if {
	bad_cancel := order_summary("O1", "a", "SELL", "100", "2026-03-02T14:00:00Z", "yesterday", "0")
	no_fill := json.remove(order_summary("O2", "a", "SELL", "100", "2026-03-02T14:00:00Z", null, "0"), ["filledQuantity"])
	bad_side := order_summary("O3", "a", "SHORT", "100", "2026-03-02T14:00:00Z", null, "0")
	inp := surveil([], [bad_cancel, no_fill, bad_side, json.remove(bad_side, ["orderId"])])
	{a.subjects.orderIds | some a in alerts_of(inp, "malformed-input")} == {["O1"], ["O2"], ["O3"], []}
	some m in input_alert_messages(inp)
	startswith(m, "order at index 3 is malformed")
}

test_unreadable_session_config_or_kind_are_alerts if {
	input_alert_messages(with_close(surveil([], []), "16:00")) == {"session.close \"16:00\" is not an RFC 3339 time"}
	input_alert_messages(with_config(surveil([], []), {"closeWindowMinutes": "five"})) == {"config: closeWindowMinutes is not a decimal"}
	input_alert_messages({"kind": "pre-trade"}) == {"kind must be \"surveillance\", got \"pre-trade\""}
	input_alert_messages({"kind": "surveillance", "trades": {"T1": {}}, "orders": "none"}) == {"trades must be an array", "orders must be an array"}
	alerts_for({"kind": "surveillance"}) == set()
}

test_surveillance_input_never_allows_an_order if {
	d := decision_for(surveil([], []))
	d.allow == false
	d.violations == [{"rule": "malformed-input", "message": "kind must be \"pre-trade\", got \"surveillance\""}]
}
