package fusemount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

func TestCheckAllowOther(t *testing.T) {
	dir := t.TempDir()
	conf := func(text string) string {
		p := filepath.Join(dir, fmt.Sprintf("fuse%d.conf", len(text)))
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	with := conf("# mount_max = 1000\n  user_allow_other \n")
	without := conf("# user_allow_other\nmount_max = 1000\n")
	for _, tc := range []struct {
		name    string
		opts    Options
		euid    int
		conf    string
		wantErr bool
	}{
		{"root needs no fuse.conf", Options{}, 0, without, false},
		{"user with user_allow_other", Options{}, 1000, with, false},
		{"user without it", Options{}, 1000, without, true},
		{"user, no fuse.conf at all", Options{}, 1000, filepath.Join(dir, "missing"), true},
		{"user, owner only", Options{OwnerOnly: true}, 1000, without, false},
	} {
		err := CheckAllowOther(tc.opts, tc.euid, tc.conf)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: %v, want error %v", tc.name, err, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--allow-other=false") {
			t.Errorf("%s: %v does not say how to do without allow_other", tc.name, err)
		}
	}
}
