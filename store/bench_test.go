package store

import (
	"fmt"
	"testing"
)

func benchStore(b *testing.B, policy SyncPolicy) *Store {
	if policy == "" {
		return OpenMemory(Options{})
	}
	s, err := Open(b.TempDir(), Options{Sync: policy, CompactBytes: -1, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// policies: memory (no log), then each fsync policy on the local disk.
var policies = []SyncPolicy{"", SyncNone, SyncBatch, SyncAlways}

func policyName(p SyncPolicy) string {
	if p == "" {
		return "memory"
	}
	return string(p)
}

func BenchmarkWriteAt4K(b *testing.B) {
	data := make([]byte, 4096)
	for _, p := range policies {
		b.Run(policyName(p), func(b *testing.B) {
			s := benchStore(b, p)
			f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
			b.SetBytes(4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.WriteAt(f.Ino, data, int64(i%256)*4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteAt4KParallel shows group commit: concurrent writers share
// one fdatasync.
func BenchmarkWriteAt4KParallel(b *testing.B) {
	data := make([]byte, 4096)
	for _, p := range []SyncPolicy{SyncBatch, SyncAlways} {
		b.Run(policyName(p), func(b *testing.B) {
			s := benchStore(b, p)
			f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
			b.SetBytes(4096)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, err := s.WriteAt(f.Ino, data, int64(i%256)*4096); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkReadAt4K(b *testing.B) {
	s := OpenMemory(Options{})
	f, _ := s.Create(RootIno, "f", 0o644, 0, 0)
	s.WriteAt(f.Ino, make([]byte, 1<<20), 0)
	buf := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.ReadAt(f.Ino, buf, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupGetattr(b *testing.B) {
	s := OpenMemory(Options{})
	for i := 0; i < 1000; i++ {
		s.Create(RootIno, fmt.Sprintf("f%04d", i), 0o644, 0, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := s.Lookup(RootIno, "f0500")
		if err != nil {
			b.Fatal(err)
		}
		s.Getattr(a.Ino)
	}
}

func BenchmarkCreateUnlink(b *testing.B) {
	for _, p := range policies {
		b.Run(policyName(p), func(b *testing.B) {
			s := benchStore(b, p)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Create(RootIno, "f", 0o644, 0, 0); err != nil {
					b.Fatal(err)
				}
				if err := s.Unlink(RootIno, "f"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReaddir100(b *testing.B) {
	s := OpenMemory(Options{})
	for i := 0; i < 100; i++ {
		s.Create(RootIno, fmt.Sprintf("f%03d", i), 0o644, 0, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Readdir(RootIno); err != nil {
			b.Fatal(err)
		}
	}
}
