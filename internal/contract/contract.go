// Package contract names, once, the harness's contract addresses (the
// ports docs/ARCHITECTURE.md and the containers promise) and the defaults
// of a run, so that the commands' flags, the workload and the tests cannot
// drift apart. Tests never listen on these: they take ephemeral ports.
package contract

// The contract addresses, on loopback.
const (
	ProxyAddr      = "127.0.0.1:8764" // the proxy's client API
	PrimaryAddr    = "127.0.0.1:8765" // the primary bridge (bazil)
	ShadowAddr     = "127.0.0.1:8766" // the shadow bridge (go-fuse)
	AdminAddr      = "127.0.0.1:9765" // the proxy's metrics and admin API
	PrometheusAddr = "127.0.0.1:9090" // the Prometheus that scrapes them
)

// The defaults of a run.
const (
	Dir     = ".lighthouse" // `lighthouse up`'s working directory
	Ops     = 30000         // workload ops in all, the setup of the tree included
	Clients = 8             // concurrent workload clients
	Seed    = 1             // the workload's seed
)

// URL is addr as an http URL.
func URL(addr string) string { return "http://" + addr }
