package conformance_test

import (
	"testing"

	"github.com/lighthouse-fs/lighthouse/conformance"
)

// TestParseSettingsIgnoresInterrupt: an INTERRUPT is the kernel's answer
// to a signal reaching the waiting thread (the Go runtime preempts with
// one), not traffic a probe step caused, so the generated page does not
// change with it (a CI run counted "INTERRUPT×1" once in a dozen).
func TestParseSettingsIgnoresInterrupt(t *testing.T) {
	log := `tx 1:     OK, {7.28 Ra 131072 ASYNC_READ 0/0 Wr 131072 Tg 0 MaxPages 32 MaxStack 1}
rx 2: LOOKUP n1 ["lighthouse-probe-step-0"] 23b
tx 2:     2=no such file or directory, {n0 g0 tE=0s tA=0s {M00 SZ=0 L=0 0:0 0 0 0:0 A 0.000000 M 0.000000 C 0.000000}}
rx 3: MKDIR n1 {0755 (00)} ["d"] 2b
rx 4: INTERRUPT n0 {ix 3}
tx 3:     OK, {n2 g1 tE=0s tA=0s {M040755 SZ=0 L=2 0:0 0 0 2:0 A 0.000000 M 0.000000 C 0.000000}}
`
	s, err := conformance.ParseSettings(log)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Steps["mkdir"].Requests
	if len(got) != 1 || got["MKDIR"] != 1 {
		t.Errorf("mkdir step requests %v, want only MKDIR×1", got)
	}
}
