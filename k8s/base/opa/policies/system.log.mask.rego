# Decision-log masking: OPA calls data.system.log.mask before it writes a decision, so credentials a
# client sent never reach the log. They never decide anything: identity is the mTLS peer only.
package system.log

secret_headers := {
	"authorization",
	"cookie",
	"proxy-authorization",
	"x-api-key",
	"x-auth-token",
}

# The decision-log event is the input here; the request's input sits under input.input.
mask contains sprintf("/input/attributes/request/http/headers/%s", [name]) if {
	some name, _ in input.input.attributes.request.http.headers
	lower(name) in secret_headers
}
