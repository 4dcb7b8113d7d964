package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSmallFiles reports, for 10,000 and 100,000 files of 100 bytes
// (100 directories under "top"), the size and time of a whole-store
// snapshot and of a restore of it into a store on disk (durable), and the
// same for the subtree "top" (everything) and "top/d000" (1% of the
// files), restored into a store on disk holding other contents there:
//
//	go test -run '^$' -bench SmallFiles -benchtime 1x ./store
func BenchmarkSmallFiles(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			src := OpenMemory(Options{})
			fill(b, src, n, "src")
			for range b.N {
				dst, err := Open(b.TempDir(), Options{CompactBytes: -1, Logf: b.Logf})
				if err != nil {
					b.Fatal(err)
				}
				fill(b, dst, n/10, "dst")
				timed := func(fn func() error) float64 {
					start := time.Now()
					if err := fn(); err != nil {
						b.Fatal(err)
					}
					return time.Since(start).Seconds() * 1000
				}
				var whole, top, one []byte
				b.ReportMetric(timed(func() error { whole = src.Snapshot(); return nil }), "whole-snap-ms")
				b.ReportMetric(float64(len(whole))/1e6, "whole-MB")
				b.ReportMetric(timed(func() (err error) { top, err = src.SnapshotSubtree("top"); return }), "top-snap-ms")
				b.ReportMetric(float64(len(top))/1e6, "top-MB")
				b.ReportMetric(timed(func() (err error) { one, err = src.SnapshotSubtree("top/d000"); return }), "1pct-snap-ms")
				b.ReportMetric(float64(len(one))/1e6, "1pct-MB")
				b.ReportMetric(timed(func() error { return dst.RestoreSubtree("top/d000", one) }), "1pct-restore-ms")
				b.ReportMetric(timed(func() error { return dst.RestoreSubtree("top", top) }), "top-restore-ms")
				b.ReportMetric(timed(func() error { return dst.Restore(whole) }), "whole-restore-ms")
				dst.Close()
			}
		})
	}
}

// fill makes n files of 100 bytes in 100 directories under "top".
func fill(b *testing.B, s *Store, n int, tag string) {
	top, err := s.Mkdir(RootIno, "top", 0o755, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(fmt.Sprintf("%-100s", tag))
	var dir Attr
	for i := range n {
		if i%(n/100) == 0 {
			if dir, err = s.Mkdir(top.Ino, fmt.Sprintf("d%03d", i/(n/100)), 0o755, 0, 0); err != nil {
				b.Fatal(err)
			}
		}
		f, err := s.Create(dir.Ino, fmt.Sprintf("f%06d", i), 0o644, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.WriteAt(f.Ino, data, 0); err != nil {
			b.Fatal(err)
		}
	}
}
