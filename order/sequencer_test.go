package order

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

func TestKeysOf(t *testing.T) {
	tests := []struct {
		name string
		op   fsop.Op
		want map[string]Mode
	}{
		{"stat", fsop.Op{Kind: fsop.Stat, Path: "a/b"}, map[string]Mode{".": IS, "a": IS, "a/b": S}},
		{"write", fsop.Op{Kind: fsop.WriteFile, Path: "a/b"}, map[string]Mode{".": IX, "a": IX, "a/b": X}},
		{"rename", fsop.Op{Kind: fsop.Rename, Path: "a/b", To: "c"}, map[string]Mode{".": IX, "a": IX, "a/b": X, "c": X}},
		{"rename into own parent", fsop.Op{Kind: fsop.Rename, Path: "a/b", To: "a"}, map[string]Mode{".": IX, "a": X, "a/b": X}},
		{"root readdir", fsop.Op{Kind: fsop.Readdir, Path: "."}, map[string]Mode{".": S}},
		{"statfs", fsop.Op{Kind: fsop.Statfs, Path: "x"}, map[string]Mode{".": S}},
		{"open read-only", fsop.Op{Kind: fsop.Open, Path: "f", Handle: 7}, map[string]Mode{".": IS, "f": S, HandleKey(7): X}},
		{"pwrite", fsop.Op{Kind: fsop.Pwrite, Handle: 7}, map[string]Mode{".": IX, "f": X, HandleKey(7): S}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]Mode{}
			for _, k := range KeysOf(&tt.op, "f") {
				got[k.Name] = k.Mode
			}
			if len(got) != len(tt.want) {
				t.Fatalf("keys %v, want %v", got, tt.want)
			}
			for n, m := range tt.want {
				if got[n] != m {
					t.Fatalf("key %q mode %d, want %d (all: %v)", n, got[n], m, got)
				}
			}
		})
	}
}

// conflicts is the ordering rule stated plainly, independent of lock modes:
// two ops conflict when a path of one is, or contains, a path of the other,
// and at least one of them writes.
func conflicts(a, b *fsop.Op) bool {
	if !a.Kind.Mutates() && !b.Kind.Mutates() {
		return false
	}
	for _, p := range Targets(a, "") {
		for _, q := range Targets(b, "") {
			if Within(p, q) || Within(q, p) {
				return true
			}
		}
	}
	return false
}

// TestSequencerOrder runs random ops through a Sequencer with completion
// in random order and checks: no two conflicting ops ever run together, a
// conflicting pair always runs in sequence order, and every op runs.
func TestSequencerOrder(t *testing.T) {
	paths := []string{".", "a", "a/b", "a/b/c", "a/d", "e", "e/f"}
	kinds := []fsop.Kind{fsop.Stat, fsop.Readdir, fsop.WriteFile, fsop.Mkdir, fsop.Unlink, fsop.Rename, fsop.ReadFile}
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		n := 50 + r.IntN(150)
		ops := make([]fsop.Op, n)
		for i := range ops {
			ops[i] = fsop.Op{Kind: kinds[r.IntN(len(kinds))], Path: paths[r.IntN(len(paths))], To: paths[r.IntN(len(paths))]}
			if ops[i].Kind == fsop.Mkdir && ops[i].Path == "." {
				ops[i].Path = "a"
			}
		}
		s := NewSequencer()
		var runnable []int
		running := map[int]bool{}
		finished := make([]bool, n)
		tickets := make([]*Ticket, n)
		start := make([]int, n) // step at which op i started
		enqueued, step := 0, 0
		for done := 0; done < n; step++ {
			// Enqueue a few more, in order, then start or finish one op at random.
			for k := r.IntN(4); k > 0 && enqueued < n; k-- {
				i := enqueued
				tickets[i] = s.Enqueue(NewTicket(func() { runnable = append(runnable, i) }), KeysOf(&ops[i], ""))
				enqueued++
			}
			if len(runnable) > 0 && (len(running) == 0 || r.IntN(2) == 0) {
				j := r.IntN(len(runnable))
				i := runnable[j]
				runnable = slices.Delete(runnable, j, j+1)
				for o := range running {
					if conflicts(&ops[i], &ops[o]) {
						t.Fatalf("seed %d: op %d %v runs together with conflicting op %d %v", seed, i, ops[i], o, ops[o])
					}
				}
				for o := 0; o < i; o++ {
					if !finished[o] && conflicts(&ops[i], &ops[o]) {
						t.Fatalf("seed %d: op %d %v started before earlier conflicting op %d %v finished", seed, i, ops[i], o, ops[o])
					}
				}
				running[i] = true
				start[i] = step
			} else if len(running) > 0 {
				keys := make([]int, 0, len(running))
				for o := range running {
					keys = append(keys, o)
				}
				sort.Ints(keys)
				i := keys[r.IntN(len(keys))]
				delete(running, i)
				finished[i] = true
				done++
				s.Done(tickets[i])
			} else if enqueued == n {
				t.Fatalf("seed %d: stuck with %d of %d ops done and nothing runnable", seed, done, n)
			}
		}
		if s.Len() != 0 {
			t.Fatalf("seed %d: %d lock names left after every op finished", seed, s.Len())
		}
	}
}

// TestSequencerConcurrency: non-conflicting ops are not serialised.
func TestSequencerConcurrency(t *testing.T) {
	s := NewSequencer()
	started := 0
	for i := 0; i < 100; i++ {
		op := fsop.Op{Kind: fsop.WriteFile, Path: "dir/f" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		s.Enqueue(NewTicket(func() { started++ }), KeysOf(&op, ""))
	}
	if started != 100 {
		t.Fatalf("%d of 100 writes to distinct files started at once", started)
	}
	rd := fsop.Op{Kind: fsop.Readdir, Path: "dir"}
	blocked := true
	s.Enqueue(NewTicket(func() { blocked = false }), KeysOf(&rd, ""))
	if !blocked {
		t.Fatal("readdir of dir started while writes into it were running")
	}
}

func BenchmarkSequencer(b *testing.B) {
	s := NewSequencer()
	ops := []fsop.Op{
		{Kind: fsop.Stat, Path: "src/pkg/a.go"},
		{Kind: fsop.WriteFile, Path: "src/pkg/b.go"},
		{Kind: fsop.Readdir, Path: "src"},
		{Kind: fsop.Rename, Path: "src/x", To: "src/y"},
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		op := &ops[i%len(ops)]
		t := s.Enqueue(NewTicket(func() {}), KeysOf(op, ""))
		s.Done(t)
	}
}
