# Unit tests for the decision-log mask.
package system.log_test

import data.system.log

event(headers) := {"input": {"attributes": {"request": {"http": {
	"method": "GET",
	"path": "/trading/orders",
	"headers": headers,
}}}}}

test_credentials_are_masked if {
	masks := log.mask with input as event({
		"authorization": "Bearer secret",
		"Cookie": "session=secret",
		"proxy-authorization": "Basic c2VjcmV0",
		"x-api-key": "secret",
		"x-auth-token": "secret",
		"user-agent": "curl/8",
	})
	masks == {
		"/input/attributes/request/http/headers/authorization",
		"/input/attributes/request/http/headers/Cookie",
		"/input/attributes/request/http/headers/proxy-authorization",
		"/input/attributes/request/http/headers/x-api-key",
		"/input/attributes/request/http/headers/x-auth-token",
	}
}

test_nothing_to_mask if {
	count(log.mask) == 0 with input as event({"user-agent": "curl/8", "x-request-id": "r-1"})
	count(log.mask) == 0 with input as {"input": {}}
}
