package proxy

import (
	"bytes"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// fileView is a view of one regular file, for blame's unit tests.
type fileView struct {
	data []byte
	mode uint32
}

func (v fileView) present() bool { return v.data != nil }
func (v fileView) isDir() bool   { return false }
func (v fileView) target() string {
	return ""
}
func (v fileView) attr() fsop.Attr {
	return fsop.Attr{Size: int64(len(v.data)), Mode: v.mode}
}
func (v fileView) xattr(string) ([]byte, bool, bool) { return nil, false, true }
func (v fileView) holdsData(h *histOp, _ []byte, off int64) (bool, bool) {
	if off < 0 {
		off = int64(len(v.data)) - int64(h.n)
	}
	if off < 0 || off+int64(h.n) > int64(len(v.data)) {
		return false, true
	}
	return xxhash.Sum64(v.data[off:off+int64(h.n)]) == h.sum, true
}

func acked(op fsop.Op) *histOp {
	payload := op.Data
	h := &histOp{op: op, sum: xxhash.Sum64(payload), n: len(payload)}
	h.acked.Store(true)
	return h
}

// TestBlameBack: the op that tells two copies apart decides, even when
// later ops on the path are held by both; an op that gave the path a new
// identity ends the search.
func TestBlameBack(t *testing.T) {
	const f = "d/f"
	good := fileView{data: []byte("hello world"), mode: 0o600}
	lost := fileView{data: bytes.Repeat([]byte{0}, 11), mode: 0o600}
	pwrite := acked(fsop.Op{Kind: fsop.Pwrite, Path: f, Data: []byte("world"), Offset: 6})
	chmod := acked(fsop.Op{Kind: fsop.Chmod, Path: f, Mode: 0o600})
	failedOp := &histOp{op: fsop.Op{Kind: fsop.Chmod, Path: f, Mode: 0o755}}
	create := acked(fsop.Op{Kind: fsop.WriteFile, Path: f, Data: []byte("hello world")})
	rename := acked(fsop.Op{Kind: fsop.Rename, Path: "d/g", To: f})
	appendW := acked(fsop.Op{Kind: fsop.Append, Path: f, Data: []byte("!")})
	link := acked(fsop.Op{Kind: fsop.Link, Path: "d/g", To: f})
	pwriteG := acked(fsop.Op{Kind: fsop.Pwrite, Path: "d/g", Data: []byte("world"), Offset: 6})
	for _, tt := range []struct {
		name string
		hist []*histOp // newest first
		a, b fileView
		want string
	}{
		{"last op decides", []*histOp{pwrite}, lost, good, "record"},
		{"other lost it", []*histOp{pwrite}, good, lost, "other"},
		{"behind an op both hold", []*histOp{chmod, pwrite}, lost, good, "record"},
		{"a failed op changed nothing", []*histOp{failedOp, chmod, pwrite}, good, lost, "other"},
		{"both hold every op", []*histOp{chmod, pwrite}, good, good, ""},
		{"through a rename to the earlier name", []*histOp{rename, pwriteG}, lost, good, "record"},
		{"not past a link", []*histOp{link, pwriteG}, lost, good, ""},
		{"whole-file write decides first", []*histOp{create, pwrite}, lost, good, "record"},
		{"a whole-file write behind appends", []*histOp{appendW, chmod, create}, fileView{data: []byte("hellX world!"), mode: 0o600}, fileView{data: []byte("hello world!"), mode: 0o600}, "record"},
		{"appends held by both, the write too", []*histOp{appendW, create}, fileView{data: []byte("hello world!"), mode: 0o600}, fileView{data: []byte("hello world!"), mode: 0o600}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hist []histAt
			path := f
			for _, h := range tt.hist {
				hist = append(hist, histAt{h, path})
				if h.op.Kind == fsop.Rename {
					path = h.op.Path // ops before it are on the earlier name
				}
			}
			got, by := blameBack(hist, tt.a, tt.b)
			if got != tt.want {
				t.Fatalf("blameBack = %q, want %q", got, tt.want)
			}
			if (by != nil) != (got != "") {
				t.Fatalf("deciding op %v for verdict %q", by, got)
			}
		})
	}
}
