package uplink

// ParseRetryAfter exposes the Retry-After parser to the tests.
var ParseRetryAfter = parseRetryAfter
