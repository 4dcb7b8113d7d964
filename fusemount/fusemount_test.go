package fusemount

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescape(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "/mnt/a", "/mnt/a"},
		{"space", `/mnt/with\040space`, "/mnt/with space"},
		{"backslash", `/mnt/back\134slash`, `/mnt/back\slash`},
		{"short escape kept", `/mnt/x\04`, `/mnt/x\04`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unescape(tt.in); got != tt.want {
				t.Fatalf("unescape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNotMounted(t *testing.T) {
	dir := t.TempDir()
	if _, ok := Find(dir); ok {
		t.Fatal("a fresh directory reported as a FUSE mount")
	}
	if err := Abort(dir); err == nil {
		t.Fatal("Abort of a plain directory succeeded")
	}
	if err := Unmount(dir); err != nil {
		t.Fatalf("Unmount of a plain directory: %v", err)
	}
	sub := filepath.Join(dir, "new", "mnt")
	if err := CleanStale(sub); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(sub); err != nil || !st.IsDir() {
		t.Fatalf("CleanStale did not create %s: %v", sub, err)
	}
}

func TestMountsListsOnlyFUSE(t *testing.T) {
	ms, err := Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.FSType != "fuse" && m.FSType[:5] != "fuse." {
			t.Fatalf("non-FUSE mount listed: %+v", m)
		}
	}
}
