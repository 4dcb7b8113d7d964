package conformance_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/conformance"
	"github.com/lighthouse-fs/lighthouse/fsop"
)

// drawer makes the choices of a generated op: rapid (biased to small
// values, shrinkable) or a seeded uniform source (wider coverage).
type drawer interface{ pick(n int, label string) int }

type rapidDrawer struct{ t *rapid.T }

func (d rapidDrawer) pick(n int, label string) int { return rapid.IntRange(0, n-1).Draw(d.t, label) }

type randDrawer struct{ r *rand.Rand }

func (d randDrawer) pick(n int, _ string) int { return d.r.IntN(n) }

// sizes are offsets and lengths around page and chunk boundaries, so that
// random sequences land on the edges where data bugs live.
var sizes = []int64{0, 1, 3, 100, 4095, 4096, 4097, 6000, 65535, 65536, 65537, 70000}

// kinds lists file data ops twice: they are where content bugs hide.
var kinds = []fsop.Kind{
	fsop.Mkdir, fsop.Create, fsop.WriteFile, fsop.Append, fsop.Write, fsop.Truncate,
	fsop.WriteFile, fsop.Write, fsop.Truncate, fsop.ReadFile, fsop.ReadFile,
	fsop.Unlink, fsop.Rmdir, fsop.Rename, fsop.Link, fsop.Symlink, fsop.Stat, fsop.Lstat,
	fsop.Readdir, fsop.Chmod, fsop.Setxattr, fsop.Getxattr, fsop.Removexattr,
	fsop.Listxattr, fsop.Readlink, fsop.Rename, fsop.Stat,
}

// genOp draws one operation over a small name space, so that sequences
// collide: rename onto existing names, unlink what was linked, and so on.
func genOp(d drawer) fsop.Op {
	names := []string{"a", "b", "d", "d/a", "d/b"}
	p := names[d.pick(len(names), "path")]
	q := names[d.pick(len(names), "to")]
	chunks := []string{"x", "yz", "0123456789"}
	data := []byte(strings.Repeat(chunks[d.pick(len(chunks), "chunk")], d.pick(800, "repeat")))
	switch kind := kinds[d.pick(len(kinds), "kind")]; kind {
	case fsop.Mkdir, fsop.Create:
		return fsop.Op{Kind: kind, Path: p, Mode: 0o755}
	case fsop.WriteFile, fsop.Append:
		return fsop.Op{Kind: kind, Path: p, Data: data}
	case fsop.Write:
		return fsop.Op{Kind: kind, Path: p, Data: data, Offset: sizes[d.pick(len(sizes), "offset")]}
	case fsop.Truncate:
		return fsop.Op{Kind: kind, Path: p, Size: sizes[d.pick(len(sizes), "size")]}
	case fsop.Rename, fsop.Link:
		return fsop.Op{Kind: kind, Path: p, To: q}
	case fsop.Symlink:
		targets := []string{"a", "d", "../a", "nope"}
		return fsop.Op{Kind: kind, Path: p, Target: targets[d.pick(len(targets), "target")]}
	case fsop.Chmod:
		modes := []uint32{0o600, 0o644, 0o755, 0o700, 0o000}
		return fsop.Op{Kind: kind, Path: p, Mode: modes[d.pick(len(modes), "mode")]}
	case fsop.Setxattr:
		return fsop.Op{Kind: kind, Path: p, Name: "user." + q[:1], Value: data[:min(len(data), 100)]}
	case fsop.Getxattr, fsop.Removexattr:
		return fsop.Op{Kind: kind, Path: p, Name: "user." + q[:1]}
	default:
		return fsop.Op{Kind: kind, Path: p}
	}
}

// firstMismatch runs ops on every target and returns a description of the
// first result that differs from the reference, or "".
func firstMismatch(ts []conformance.Target, name string, ops []fsop.Op) (string, error) {
	ref, err := conformance.RunOps(ts[0], name+".ref", ops)
	if err != nil {
		return "", err
	}
	for _, target := range ts[1:] {
		got, err := conformance.RunOps(target, name+"."+target.Name, ops)
		if err != nil {
			return "", err
		}
		for i := range ops {
			if eq, _ := compare.Equal(&ref[i], &got[i], compare.Rules{}); !eq {
				return fmt.Sprintf("%s differs from the reference at op %d (%s %s -> %s):\n%s",
					target.Name, i, ops[i].Kind, ops[i].Path, ops[i].To, compare.Diff(ref[i], got[i], compare.Rules{})), nil
			}
		}
	}
	return "", nil
}

// TestPropertyDifferential runs rapid-generated op sequences on every
// target and requires each result to equal the reference's; rapid shrinks
// a failure to a minimal sequence.
func TestPropertyDifferential(t *testing.T) {
	ts, mounts := targets(t)
	var seq atomic.Int64
	guard(t, mounts, 5*time.Minute, func() {
		rapid.Check(t, func(rt *rapid.T) {
			ops := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) fsop.Op { return genOp(rapidDrawer{t}) }), 1, 40).Draw(rt, "ops")
			msg, err := firstMismatch(ts, fmt.Sprintf("prop.%d", seq.Add(1)), ops)
			if err != nil {
				rt.Fatal(err)
			}
			if msg != "" {
				rt.Fatal(msg)
			}
		})
	})
}

// TestRandomDifferential is the same property with uniform choices and
// longer sequences (rapid's draws favour small values, which leaves deep
// sequences unexplored). A failure is shrunk by deleting ops while it
// persists, then reported with its seed. LIGHTHOUSE_RANDOM_SEQUENCES sets
// the count (default 150).
func TestRandomDifferential(t *testing.T) {
	count := 150
	if v, err := strconv.Atoi(os.Getenv("LIGHTHOUSE_RANDOM_SEQUENCES")); err == nil {
		count = v
	}
	ts, mounts := targets(t)
	seed := uint64(time.Now().UnixNano())
	n := 0
	run := func(ops []fsop.Op) string {
		n++
		msg, err := firstMismatch(ts, fmt.Sprintf("rand.%d", n), ops)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	guard(t, mounts, 8*time.Minute, func() {
		for i := 0; i < count; i++ {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			ops := make([]fsop.Op, 20+r.IntN(40))
			for j := range ops {
				ops[j] = genOp(randDrawer{r})
			}
			msg := run(ops)
			if msg == "" {
				continue
			}
			for j := len(ops) - 1; j >= 0; j-- { // shrink: drop ops that are not needed
				shorter := append(append([]fsop.Op{}, ops[:j]...), ops[j+1:]...)
				if m := run(shorter); m != "" {
					ops, msg = shorter, m
				}
			}
			var b strings.Builder
			for j, op := range ops {
				fmt.Fprintf(&b, "  %d: %s %s %s size=%d off=%d len(data)=%d\n", j, op.Kind, op.Path, op.To+op.Target, op.Size, op.Offset, len(op.Data))
			}
			t.Fatalf("seed %d sequence %d, shrunk to %d ops:\n%s%s", seed, i, len(ops), b.String(), msg)
		}
	})
	t.Logf("%d random sequences (seed %d) agree on every target", count, seed)
}
