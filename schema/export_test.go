package schema

// StopAfter makes Ensure fail after n applied steps, as a crash would.
func StopAfter(n int) Option {
	return Option{name: "StopAfter", apply: func(c *config) { c.stopAfter = n }}
}

var ErrInterrupted = errInterrupted
