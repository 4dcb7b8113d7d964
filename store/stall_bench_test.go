package store

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCompactionStall fills a store with LIGHTHOUSE_STALL_MIB MiB of
// file data (default 1024), then compacts it while a writer makes 64 KiB
// writes under SyncAlways, and reports the longest write during the
// compaction (max-stall-ms) and the median (p50-ms), the same two over 2 s
// without compaction just before (max-quiet-ms, p50-quiet-ms: the
// machine's own noise), how long the compaction held the tree lock
// (lock-held-ms) and its duration (compact-s). Issue 13 item 4: one write
// waited 14.4 s for a 128 MiB snapshot.
//
//	LIGHTHOUSE_STALL_MIB=1024 go test -run '^$' -bench CompactionStall -benchtime 1x ./store
func BenchmarkCompactionStall(b *testing.B) {
	mib := 1024
	if v, err := strconv.Atoi(os.Getenv("LIGHTHOUSE_STALL_MIB")); err == nil {
		mib = v
	}
	s, err := Open(b.TempDir(), Options{Sync: SyncAlways, CompactBytes: -1, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + i>>9)
	}
	for f := 0; f*64 < mib; f++ {
		a, err := s.Create(RootIno, "big"+strconv.Itoa(f), 0o644, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		for m := 0; m < 64 && f*64+m < mib; m++ {
			if _, err := s.WriteAt(a.Ino, block, int64(m)<<20); err != nil {
				b.Fatal(err)
			}
		}
	}
	w, err := s.Create(RootIno, "writer", 0o644, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		var stop atomic.Bool
		var mu sync.Mutex
		var lat []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; !stop.Load(); i++ {
				start := time.Now()
				if _, err := s.WriteAt(w.Ino, block[:64<<10], int64(i%1024)<<16); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}()
		window := func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			out := slices.Clone(lat)
			lat = lat[:0]
			slices.Sort(out)
			return out
		}
		time.Sleep(2 * time.Second) // a window without compaction: the machine's own noise
		quiet := window()
		start := time.Now()
		if err := s.Compact(); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		during := window()
		stop.Store(true)
		<-done
		b.ReportMetric(float64(during[len(during)-1])/1e6, "max-stall-ms")
		b.ReportMetric(float64(quiet[len(quiet)-1])/1e6, "max-quiet-ms")
		b.ReportMetric(float64(during[len(during)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(quiet[len(quiet)/2])/1e6, "p50-quiet-ms")
		b.ReportMetric(float64(s.CompactLockHeld())/1e6, "lock-held-ms")
		b.ReportMetric(took.Seconds(), "compact-s")
	}
}
