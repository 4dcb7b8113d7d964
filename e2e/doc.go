// Package e2e holds Lighthouse's end-to-end tests: the real lighthouse
// binary, built once by TestMain, runs bridges (bazil primary, go-fuse
// shadow, each on a real FUSE mount), the front proxy, `lighthouse replay`
// and Debian's Prometheus as child processes, and the tests talk to them
// over HTTP only: a process never makes syscalls on a mount it serves, and
// the test process makes none on any mount.
//
// The package has no code outside its tests.
package e2e
