package portowner

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	p, ok := Of(addr)
	if !ok || p.PID != os.Getpid() || !strings.Contains(p.Command, "portowner.test") {
		t.Errorf("owner of %s: %v %v, want this test (pid %d)", addr, p, ok, os.Getpid())
	}
	ln.Close()
	if p, ok := Of(addr); ok {
		t.Errorf("a closed port has an owner: %v", p)
	}
	if _, ok := Of("nonsense"); ok {
		t.Error("an address without a port has an owner")
	}
}
