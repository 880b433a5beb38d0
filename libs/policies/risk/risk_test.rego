# Every risk rule passes an order at its limit and refuses one past it, with its reason code; plus
# precedence of account over firm limits, exact decimals, and malformed input failing closed.
package finance.risk_test

import data.finance.risk

base := {
	"order": {
		"orderId": "ord-1",
		"accountId": "ACC-1",
		"symbol": "AAPL",
		"side": "BUY",
		"type": "LIMIT",
		"quantity": "100",
		"price": "150.00",
		"notional": {"amount": "15000.00", "currency": "USD"},
	},
	"limits": {"account": {}, "firm": {"maxOrderValue": "1000000.00", "quota": "5000000.00"}},
	"killSwitches": [],
	"exposure": {"gross": "0.00"},
	"position": {"net": "0", "openBuy": "0", "openSell": "0"},
	"throttle": {"lastSecond": "0", "lastMinute": "0"},
	"referencePrice": "150.00",
}

with_order(patch) := object.union(base, {"order": object.union(base.order, patch)})

with_limits(account, firm) := object.union(base, {"limits": {"account": account, "firm": firm}})

codes(i) := {v.code | some v in risk.violations with input as i}

decision(i) := d if {
	d := risk.decision with input as i
}

test_a_plain_order_is_allowed if {
	decision(base) == {"allow": true, "violations": []}
}

# --- kill switch ---

test_kill_switch_of_the_symbol_rejects if {
	i := object.union(base, {"killSwitches": [{"scope": "SYMBOL", "symbol": "AAPL", "reason": "halt"}]})
	d := decision(i)
	d.allow == false
	d.code == "KILL_SWITCH_ACTIVE"
	d.message == "the kill switch of symbol AAPL is engaged: halt"
}

test_kill_switch_of_the_account_and_firm_reject if {
	account := object.union(base, {"killSwitches": [{"scope": "ACCOUNT", "accountId": "ACC-1", "reason": "loss"}]})
	decision(account).message == "the kill switch of account ACC-1 is engaged: loss"
	firm := object.union(base, {"killSwitches": [{"scope": "FIRM", "reason": "outage"}]})
	decision(firm).message == "the firm-wide kill switch is engaged: outage"
}

test_kill_switch_elsewhere_passes if {
	i := object.union(base, {"killSwitches": [
		{"scope": "SYMBOL", "symbol": "MSFT", "reason": "halt"},
		{"scope": "ACCOUNT", "accountId": "ACC-2", "reason": "loss"},
	]})
	decision(i).allow
}

# --- restricted symbols ---

test_restricted_symbol_of_firm_or_account_rejects if {
	firm := with_limits({}, {"restrictedSymbols": ["TSLA", "AAPL"]})
	decision(firm).code == "RESTRICTED_SYMBOL"
	decision(firm).message == "AAPL is on the firm restricted list"
	account := with_limits({"restrictedSymbols": ["AAPL"]}, {"restrictedSymbols": ["TSLA"]})
	decision(account).message == "AAPL is on the account restricted list"
}

test_unrestricted_symbol_passes if {
	decision(with_limits({"restrictedSymbols": []}, {"restrictedSymbols": ["TSLA"]})).allow
}

# --- duplicate orders ---

test_identical_order_inside_the_window_rejects if {
	i := object.union(with_limits({}, {"duplicateWindowSeconds": "2"}), {"duplicate": {"ageMs": "1999"}})
	d := decision(i)
	d.code == "DUPLICATE_ORDER"
	d.message == "an identical order (BUY 100 AAPL at 150.00) was placed 1999 ms ago, within the duplicate-order window of 2 s firm-wide"
}

test_identical_order_outside_the_window_passes if {
	decision(object.union(with_limits({}, {"duplicateWindowSeconds": "2"}), {"duplicate": {"ageMs": "2000"}})).allow
	decision(with_limits({}, {"duplicateWindowSeconds": "2"})).allow
	decision(object.union(base, {"duplicate": {"ageMs": "5"}})).allow
}

# --- throttles ---

test_orders_per_second_counts_this_order if {
	at := object.union(with_limits({"ordersPerSecond": "5"}, {}), {"throttle": {"lastSecond": "4", "lastMinute": "4"}})
	decision(at).allow
	over := object.union(with_limits({"ordersPerSecond": "5"}, {}), {"throttle": {"lastSecond": "5", "lastMinute": "5"}})
	decision(over).code == "ORDER_RATE_PER_SECOND"
	decision(over).message == "account ACC-1 already placed 5 orders in the last second; the limit of account ACC-1 is 5 per second"
}

test_orders_per_minute_counts_this_order if {
	at := object.union(with_limits({}, {"ordersPerMinute": "100"}), {"throttle": {"lastSecond": "0", "lastMinute": "99"}})
	decision(at).allow
	over := object.union(with_limits({}, {"ordersPerMinute": "100"}), {"throttle": {"lastSecond": "0", "lastMinute": "100"}})
	decision(over).code == "ORDER_RATE_PER_MINUTE"
}

# --- order size ---

test_max_order_quantity if {
	decision(with_limits({"maxOrderQuantity": "100"}, {})).allow
	d := decision(with_limits({"maxOrderQuantity": "99"}, {}))
	d.code == "ORDER_QUANTITY_LIMIT"
	d.message == "quantity 100 exceeds the max order quantity 99 of account ACC-1"
}

test_max_order_value_exact_at_the_limit if {
	decision(with_limits({"maxOrderValue": "15000.00"}, {})).allow
	d := decision(with_limits({"maxOrderValue": "14999.99"}, {}))
	d.code == "ORDER_VALUE_LIMIT"
	d.message == "order value 15000.00 USD exceeds the max order value 14999.99 USD of account ACC-1"
}

test_max_order_value_is_exact_beyond_floating_point if {
	huge := object.union(
		with_order({"notional": {"amount": "1000000000000000000.0000000001", "currency": "USD"}}),
		{"limits": {"account": {"maxOrderValue": "1000000000000000000"}, "firm": {}}},
	)
	decision(huge).code == "ORDER_VALUE_LIMIT"
}

# An account's own limit wins over the firm's, looser or tighter.
test_account_limit_wins_over_the_firm if {
	decision(with_limits({"maxOrderValue": "20000"}, {"maxOrderValue": "10000"})).allow
	d := decision(with_limits({"maxOrderValue": null}, {"maxOrderValue": "10000"}))
	d.message == "order value 15000.00 USD exceeds the max order value 10000 USD firm-wide"
}

# --- price collar ---

test_price_collar_at_the_band_passes if {
	collar := with_limits({}, {"priceCollarPercent": "5"})
	decision(object.union(collar, {"order": object.union(base.order, {"price": "157.50"})})).allow
	decision(object.union(collar, {"order": object.union(base.order, {"price": "142.50"})})).allow
}

test_price_collar_beyond_the_band_rejects if {
	collar := with_limits({}, {"priceCollarPercent": "5"})
	high := decision(object.union(collar, {"order": object.union(base.order, {"price": "157.51"})}))
	high.code == "PRICE_COLLAR"
	high.message == "limit price 157.51 is more than 5% from the reference price 150.00 of AAPL (its last trade), the collar firm-wide"
	low := decision(object.union(collar, {"order": object.union(base.order, {"price": "142.49"})}))
	low.code == "PRICE_COLLAR"
}

test_price_collar_needs_a_reference_and_a_limit_price if {
	collar := with_limits({}, {"priceCollarPercent": "5"})
	no_reference := object.remove(object.union(collar, {"order": object.union(base.order, {"price": "300.00"})}), ["referencePrice"])
	decision(no_reference).allow
	market := object.union(collar, {"order": object.remove(object.union(base.order, {"type": "MARKET"}), ["price"])})
	decision(market).allow
}

# --- position ---

test_position_limit_on_the_long_side if {
	at := object.union(with_limits({}, {"maxPosition": "500"}), {"position": {"net": "350", "openBuy": "50", "openSell": "0"}})
	decision(at).allow
	over := object.union(with_limits({}, {"maxPosition": "499"}), {"position": {"net": "350", "openBuy": "50", "openSell": "0"}})
	decision(over).code == "POSITION_LIMIT"
	decision(over).message == "buying 100 AAPL with a position of 350 and 50 open to buy exceeds the max position 499 firm-wide"
}

test_position_limit_on_the_short_side if {
	sell := object.union(with_limits({"maxPosition": "150"}, {}), {"order": object.union(base.order, {"side": "SELL"})})
	short_at := object.union(sell, {"position": {"net": "-20", "openBuy": "0", "openSell": "30"}})
	decision(short_at).allow
	short_over := object.union(sell, {"position": {"net": "-21", "openBuy": "0", "openSell": "30"}})
	decision(short_over).code == "POSITION_LIMIT"
	startswith(decision(short_over).message, "selling 100 AAPL with a position of -21 and 30 open to sell")
}

# Selling out of a long position larger than the limit reduces it: allowed.
test_reducing_a_position_beyond_the_limit_passes if {
	sell := object.union(with_limits({"maxPosition": "100"}, {}), {"order": object.union(base.order, {"side": "SELL"})})
	decision(object.union(sell, {"position": {"net": "900", "openBuy": "0", "openSell": "0"}})).allow
}

# --- credit limit (risk quota) ---

test_risk_quota_counts_exposure_and_the_order if {
	at := object.union(with_limits({"quota": "100000.00"}, {}), {"exposure": {"gross": "85000.00"}})
	decision(at).allow
	over := object.union(with_limits({"quota": "100000.00"}, {}), {"exposure": {"gross": "85000.01"}})
	decision(over).code == "RISK_QUOTA_EXCEEDED"
	decision(over).message == "order value 15000.00 USD on top of an exposure of 85000.01 USD exceeds the risk quota 100000.00 USD of account ACC-1"
}

# --- several violations: all listed, the most fundamental named ---

test_all_violations_are_listed_and_the_first_is_named if {
	i := object.union(with_limits({"maxOrderQuantity": "1", "restrictedSymbols": ["AAPL"]}, {"maxOrderValue": "1"}), {"killSwitches": [{"scope": "FIRM", "reason": "stop"}]})
	d := decision(i)
	d.code == "KILL_SWITCH_ACTIVE"
	[v.code | some v in d.violations] == ["KILL_SWITCH_ACTIVE", "RESTRICTED_SYMBOL", "ORDER_QUANTITY_LIMIT", "ORDER_VALUE_LIMIT"]
	{v.scope | some v in d.violations; v.code == "ORDER_VALUE_LIMIT"} == {"FIRM"}
}

# --- malformed input fails closed ---

test_malformed_order_is_refused if {
	bad := object.union(base, {"order": {
		"accountId": "ACC-1", "symbol": "AAPL", "side": "SHORT", "type": "STOP", "quantity": "0",
		"notional": {"amount": "1e6", "currency": "usd"},
	}})
	d := decision(bad)
	d.code == "RISK_INPUT_INVALID"
	codes(bad) == {"RISK_INPUT_INVALID"}
	messages := {v.message | some v in d.violations}
	messages == {
		"order.notional.amount must be a decimal string",
		"order.notional.currency must be an ISO 4217 code",
		"order.quantity must be a whole number > 0",
		"order.side must be BUY or SELL",
		"order.type must be LIMIT or MARKET",
	}
}

test_limit_order_without_price_is_refused if {
	d := decision(with_order({"price": "abc"}))
	d.message == "order.price must be a decimal string for a LIMIT order"
}

test_malformed_counters_and_limits_are_refused if {
	i := object.union(base, {
		"position": {"net": "1.5", "openBuy": "0", "openSell": "0"},
		"throttle": {"lastSecond": 3, "lastMinute": "0"},
		"exposure": {"gross": "-1"},
		"limits": {"account": {"maxOrderValue": "lots", "ordersPerSecond": "-1"}, "firm": {}},
	})
	{v.message | some v in risk.violations with input as i} == {
		"position.net must be a whole number",
		"throttle.lastSecond must be a whole number",
		"exposure.gross must be a decimal string",
		"limits.account.maxOrderValue must be a decimal string",
		"limits.account.ordersPerSecond must be a whole number >= 0",
	}
}

test_missing_counters_are_refused if {
	i := object.remove(base, ["throttle", "position", "exposure"])
	count({v | some v in risk.violations with input as i; v.code == "RISK_INPUT_INVALID"}) == 6
}

test_sell_without_position_counters_is_refused if {
	i := object.union(object.remove(base, ["position"]), {"order": object.union(base.order, {"side": "SELL"})})
	not decision(i).allow
}
