// Package order decides which filesystem ops conflict and runs them in one
// order on every bridge.
//
// # Conflicts
//
// Two ops conflict when one touches a path the other touches or contains
// and at least one of them writes. KeysOf turns an op into hierarchical
// lock requests (S or X on the paths it touches, IS or IX on their
// ancestors, X on its handle for open and close); two ops conflict exactly
// when their requests are incompatible. Hard links make two names one
// file: Aliases keeps the groups of names that may be one file, and an op
// on any of them locks them all.
//
// # Sequencing
//
// A Sequencer belongs to one bridge. Ops are enqueued on every bridge's
// sequencer in one global order (the proxy holds one lock while it does),
// and an op starts on a bridge only when every earlier conflicting op has
// finished there, so conflicting ops run in the same order on both
// bridges while the rest run concurrently.
package order
