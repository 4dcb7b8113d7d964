package bench

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"github.com/lighthouse-fs/lighthouse/compare"
	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/storeexec"
)

// Go micro-benchmarks of the hot paths the other packages' benchmarks do
// not cover: the comparator per divergence class, the binary codec per op
// and result shape, the store executor per op, and the proxy's Exec end to
// end (admission, conflict keys, sequencers, mirror, read-back, compare)
// over two in-memory store bridges, per op.
//
//	go test -run '^$' -bench . -benchmem ./bench
//	go test -run '^$' -bench ProxyExec -benchmem -memprofile mem.out ./bench
//	go tool pprof -sample_index=alloc_space -top mem.out

// ---- compare.Classify, one sub-benchmark per outcome ----

func entries(n int) []fsop.Dirent {
	out := []fsop.Dirent{{Name: ".", Type: "dir"}, {Name: "..", Type: "dir"}}
	for i := 0; i < n; i++ {
		out = append(out, fsop.Dirent{Name: "e" + strconv.Itoa(i), Type: "file"})
	}
	return out
}

func BenchmarkClassify(b *testing.B) {
	stat := func(mode uint32) *fsop.Attr {
		return &fsop.Attr{Mode: mode, Size: 4096, Nlink: 1, Ino: 7, MtimeNs: 1, AtimeNs: 2, CtimeNs: 3}
	}
	data := payload(4096, 1)
	other := payload(4096, 1)
	other[4095]++
	ents := entries(100)
	reversed := make([]fsop.Dirent, len(ents))
	for i, e := range ents {
		reversed[len(ents)-1-i] = e
	}
	renamed := append([]fsop.Dirent(nil), ents...)
	renamed[50].Name = "x"
	cases := []struct {
		name string
		a, b fsop.Result
		want string
	}{
		{"same-stat", fsop.Result{Stat: stat(0o100644)}, fsop.Result{Stat: stat(0o100644)}, ""},
		{"same-read4k", fsop.Result{Data: data}, fsop.Result{Data: append([]byte(nil), data...)}, ""},
		{"same-readdir100", fsop.Result{Entries: ents}, fsop.Result{Entries: append([]fsop.Dirent(nil), ents...)}, ""},
		{"order-only-readdir100", fsop.Result{Entries: ents}, fsop.Result{Entries: reversed}, ""},
		{"errno", fsop.Result{Errno: "ENOENT"}, fsop.Result{}, compare.ClassErrno},
		{"data-read4k", fsop.Result{Data: data}, fsop.Result{Data: other}, compare.ClassData},
		{"attr-mode", fsop.Result{Stat: stat(0o100644)}, fsop.Result{Stat: stat(0o100600)}, compare.ClassAttr},
		{"entries-readdir100", fsop.Result{Entries: ents}, fsop.Result{Entries: renamed}, compare.ClassEntries},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := compare.Classify(&c.a, &c.b, compare.Rules{}); got != c.want {
					b.Fatalf("class %q, want %q", got, c.want)
				}
			}
		})
	}
}

// ---- the binary codec, per op and result shape ----

func BenchmarkCodec(b *testing.B) {
	ops := []struct {
		name string
		op   fsop.Op
	}{
		{"stat", fsop.Op{Kind: fsop.Stat, Path: "bench-x-c1/w0/s"}},
		{"create", fsop.Op{Kind: fsop.Create, Path: "bench-x-c1/w0/f123", Mode: 0o644, Exclusive: true}},
		{"rename", fsop.Op{Kind: fsop.Rename, Path: "bench-x-c1/w0/f123", To: "bench-x-c1/w0/g123"}},
		{"pwrite4k", fsop.Op{Kind: fsop.Pwrite, Handle: 1 << 40, Offset: 8192, Data: payload(4096, 3)}},
		{"pread4k", fsop.Op{Kind: fsop.Pread, Handle: 1 << 40, Offset: 8192, Length: 4096}},
	}
	for _, c := range ops {
		buf := fsop.AppendOp(nil, &c.op)
		b.Run("op-encode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			out := make([]byte, 0, len(buf))
			for b.Loop() {
				out = fsop.AppendOp(out[:0], &c.op)
			}
		})
		b.Run("op-decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := fsop.DecodeOp(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("op-decode-nocopy/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := fsop.DecodeOpNoCopy(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	results := []struct {
		name string
		res  fsop.Result
	}{
		{"empty", fsop.Result{}},
		{"errno", fsop.Result{Errno: "ENOENT"}},
		{"stat", fsop.Result{Stat: &fsop.Attr{Mode: 0o100644, Size: 4096, Nlink: 1, Ino: 7, MtimeNs: 1, AtimeNs: 2, CtimeNs: 3}}},
		{"read4k", fsop.Result{Data: payload(4096, 5)}},
		{"readdir100", fsop.Result{Entries: entries(100)}},
	}
	for _, c := range results {
		buf := fsop.AppendResult(nil, &c.res)
		b.Run("result-encode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			out := make([]byte, 0, len(buf))
			for b.Loop() {
				out = fsop.AppendResult(out[:0], &c.res)
			}
		})
		b.Run("result-decode/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := fsop.DecodeResult(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("result-decode-nocopy/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := fsop.DecodeResultNoCopy(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// ---- ops, as the suite runs them, on one level of a tree ----

var microData = payload(ioSize, 1)

// microOps are the op types of the executor and proxy benchmarks: i is
// the iteration; each leaves the tree as it found it (pairs alternate).
var microOps = []struct {
	name string
	op   func(l *level, i int) fsop.Op
}{
	{"stat", func(l *level, _ int) fsop.Op { return fsop.Op{Kind: fsop.Stat, Path: l.client(0) + "/s"} }},
	{"pwrite4k", func(l *level, i int) fsop.Op {
		// One buffer for every op (never modified): the benchmark measures
		// the path, not making 4 KiB of data.
		return fsop.Op{Kind: fsop.Pwrite, Handle: l.handle(0), Offset: int64(i%(dataSize/ioSize)) * ioSize, Data: microData}
	}},
	{"pread4k", func(l *level, i int) fsop.Op { return specByName(OpRead).op(l, 0, i) }},
	{"chmod", func(l *level, i int) fsop.Op { return specByName(OpSetattr).op(l, 0, i) }},
	{"readdir100", func(l *level, _ int) fsop.Op { return fsop.Op{Kind: fsop.Readdir, Path: l.prefix + "/rd"} }},
	{"create-unlink", func(l *level, i int) fsop.Op {
		if i%2 == 0 {
			return fsop.Op{Kind: fsop.Create, Path: l.client(0) + "/c", Mode: 0o644, Exclusive: true}
		}
		return fsop.Op{Kind: fsop.Unlink, Path: l.client(0) + "/c"}
	}},
	{"mkdir-rmdir", func(l *level, i int) fsop.Op {
		if i%2 == 0 {
			return fsop.Op{Kind: fsop.Mkdir, Path: l.client(0) + "/d", Mode: 0o755}
		}
		return fsop.Op{Kind: fsop.Rmdir, Path: l.client(0) + "/d"}
	}},
	{"rename", func(l *level, i int) fsop.Op {
		a, c := l.client(0)+"/s", l.client(0)+"/t"
		if i%2 == 1 {
			a, c = c, a
		}
		return fsop.Op{Kind: fsop.Rename, Path: a, To: c}
	}},
}

// microLevel sets up a one-client level (data file open, readdir
// directory) through exec.
func microLevel(b *testing.B, exec execFunc) *level {
	b.Helper()
	l := newLevel("micro", 0, 1, 1<<20)
	t := &target{name: "micro", exec: exec}
	for _, op := range append(l.setupOps(), l.readdirOps()...) {
		if err := expect(context.Background(), t, &op); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

func BenchmarkStoreExec(b *testing.B) {
	for _, m := range microOps {
		b.Run(m.name, func(b *testing.B) {
			st := store.OpenMemory(store.Options{})
			defer st.Close()
			ex := storeexec.New(st)
			defer ex.Close()
			exec := func(_ context.Context, op *fsop.Op) (fsop.Result, error) { return ex.Exec(op) }
			l := microLevel(b, exec)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				op := m.op(l, i)
				if res, err := ex.Exec(&op); err != nil || res.Errno != "" {
					b.Fatalf("%s: %v %s", op.Kind, err, res.Errno)
				}
				i++
			}
		})
	}
}

// ---- the proxy end to end over two store bridges ----

// storeBridge is a proxy.Bridge over a memory store, called in process:
// the proxy's own cost without a transport or a kernel.
type storeBridge struct {
	mu sync.RWMutex // Exec shares, Restore excludes
	st *store.Store
	ex *storeexec.Executor
}

func newStoreBridge() *storeBridge {
	st := store.OpenMemory(store.Options{})
	return &storeBridge{st: st, ex: storeexec.New(st)}
}

func (s *storeBridge) Exec(_ context.Context, op *fsop.Op) (fsop.Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := *op // the executor may keep nothing of the caller's op
	res, err := s.ex.Exec(&c)
	if err != nil {
		return res, fmt.Errorf("%w: %v", proxy.ErrRefused, err)
	}
	return res, nil
}

func (s *storeBridge) State(_ context.Context, path string, _, _ int64) (fsop.Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ex.State(path)
}

func (s *storeBridge) SnapshotSubtree(_ context.Context, path string) ([]byte, error) {
	return s.st.SnapshotSubtree(path)
}

func (s *storeBridge) RestoreSubtree(_ context.Context, path string, snap []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.RestoreSubtree(path, snap)
}

func (s *storeBridge) close() {
	s.ex.Close()
	s.st.Close()
}

// BenchmarkProxyExec: proxy.Exec per op, one caller. mirror: both bridges,
// every mutation read back; mirror-noreadback: read-back off; nomirror:
// the shadow detached (the serving path alone).
// The timer includes waiting, after the loop, for the mirror to finish, so
// ns/op and allocs/op count the whole pipeline per op.
func BenchmarkProxyExec(b *testing.B) {
	modes := []struct {
		name     string
		readback float64
		mirror   bool
	}{{"mirror", 1, true}, {"mirror-noreadback", -1, true}, {"nomirror", 0, false}}
	for _, md := range modes {
		for _, m := range microOps {
			b.Run(md.name+"/"+m.name, func(b *testing.B) {
				pb, sb := newStoreBridge(), newStoreBridge()
				defer pb.close()
				defer sb.close()
				cfg := proxy.Config{Primary: pb, Shadow: sb, PrimaryName: "bazil", ShadowName: "gofuse", ReadbackRate: md.readback,
					Logger: slog.New(slog.DiscardHandler)}
				if !md.mirror {
					cfg.Shadow = detached{}
				}
				p, err := proxy.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				t := &target{name: md.name, proxy: p, mirrored: md.mirror, exec: p.Exec}
				ctx := context.Background()
				l := microLevel(b, t.run)
				if !md.mirror { // let the proxy notice the shadow is gone
					for !p.Status().Bridges[proxy.Shadow].Stale {
						t.run(ctx, &fsop.Op{Kind: fsop.Stat, Path: "."})
					}
				}
				if _, err := t.drain(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					op := m.op(l, i)
					if res, err := t.run(ctx, &op); err != nil || res.Errno != "" {
						b.Fatalf("%s: %v %s", op.Kind, err, res.Errno)
					}
				}
				if _, err := t.drain(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if n := t.divergences.Load(); n > 0 {
					b.Fatalf("%d divergences between two identical stores", n)
				}
			})
		}
	}
}
