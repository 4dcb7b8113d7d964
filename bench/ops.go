package bench

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Op type names.
const (
	OpCreate   = "create"
	OpWrite    = "write"   // pwrite of 4 KiB on an open handle
	OpRead     = "read"    // pread of 4 KiB on an open handle
	OpStat     = "stat"    // stat of a file two directories down
	OpReaddir  = "readdir" // a directory of 100 files
	OpRename   = "rename"
	OpUnlink   = "unlink"
	OpMkdir    = "mkdir"
	OpRmdir    = "rmdir"
	OpSetattr  = "setattr" // chmod
	OpSeqWrite = "seqwrite"
	OpSeqRead  = "seqread"
)

// AllOps lists every op type in the order they run: each leaves what the
// next may use (create makes the files rename renames and unlink removes).
var AllOps = []string{OpCreate, OpWrite, OpRead, OpStat, OpReaddir, OpRename, OpUnlink,
	OpMkdir, OpRmdir, OpSetattr, OpSeqWrite, OpSeqRead}

const (
	ioSize      = 4 << 10  // bytes per write and read
	dataSize    = 64 << 10 // the file write and read cycle over
	readdirSize = 100      // files in the readdir directory
)

// Per-index names a level's ops create and remove: f<i> (create), g<i>
// (rename's destination), d<i> (mkdir).
const (
	nameCreated = "f"
	nameRenamed = "g"
	nameDir     = "d"
)

// opSpec is one op type: how to make its i-th op, and what it needs from
// and leaves to the ops after it.
type opSpec struct {
	name string
	// bytes moved per op, for MiB/s (0: not a data op).
	bytes int64
	// seq: a sequential data op (blocks of Config.SeqBlock), not rounds of
	// iterations.
	seq bool
	// needs: the per-index names that must exist (made unmeasured if they
	// do not); makes and takes: what it leaves and removes.
	needs, makes, takes string
	// op is the i-th op of the type for client w of level l.
	op func(l *level, w, i int) fsop.Op
	// check, if set, validates a successful result.
	check func(l *level, res *fsop.Result) error
}

var specs = []*opSpec{
	{name: OpCreate, makes: nameCreated, op: func(l *level, _, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Create, Path: l.indexed(nameCreated, i), Mode: 0o644, Exclusive: true}
	}},
	{name: OpWrite, bytes: ioSize, op: func(l *level, w, i int) fsop.Op {
		// A fresh buffer per op, as a server decoding a request has: the
		// proxy keeps it until the mirror has run it.
		return fsop.Op{Kind: fsop.Pwrite, Handle: l.handle(w), Offset: int64(i%(dataSize/ioSize)) * ioSize, Data: payload(ioSize, i)}
	}, check: wantN(ioSize)},
	{name: OpRead, bytes: ioSize, op: func(l *level, w, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Pread, Handle: l.handle(w), Offset: int64(i%(dataSize/ioSize)) * ioSize, Length: ioSize}
	}, check: wantData(ioSize)},
	{name: OpStat, op: func(l *level, w, _ int) fsop.Op {
		return fsop.Op{Kind: fsop.Stat, Path: l.client(w) + "/s"}
	}, check: func(_ *level, res *fsop.Result) error {
		if res.Stat == nil {
			return fmt.Errorf("no stat in the result")
		}
		return nil
	}},
	{name: OpReaddir, op: func(l *level, _, _ int) fsop.Op {
		return fsop.Op{Kind: fsop.Readdir, Path: l.prefix + "/rd"}
	}, check: func(_ *level, res *fsop.Result) error {
		if n := len(res.Entries); n < readdirSize {
			return fmt.Errorf("%d entries, want %d besides the dot entries", n, readdirSize)
		}
		return nil
	}},
	{name: OpRename, needs: nameCreated, makes: nameRenamed, takes: nameCreated, op: func(l *level, _, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Rename, Path: l.indexed(nameCreated, i), To: l.indexed(nameRenamed, i)}
	}},
	{name: OpUnlink, needs: nameRenamed, takes: nameRenamed, op: func(l *level, _, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Unlink, Path: l.indexed(nameRenamed, i)}
	}},
	{name: OpMkdir, makes: nameDir, op: func(l *level, _, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Mkdir, Path: l.indexed(nameDir, i), Mode: 0o755}
	}},
	{name: OpRmdir, needs: nameDir, takes: nameDir, op: func(l *level, _, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Rmdir, Path: l.indexed(nameDir, i)}
	}},
	{name: OpSetattr, op: func(l *level, w, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Chmod, Path: l.client(w) + "/s", Mode: uint32(0o600 | (i%2)*0o044)}
	}},
	{name: OpSeqWrite, seq: true, op: func(l *level, w, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Pwrite, Handle: l.seqHandle(w), Offset: int64(i/l.conc) * l.block, Data: l.seqData}
	}},
	{name: OpSeqRead, seq: true, op: func(l *level, w, i int) fsop.Op {
		return fsop.Op{Kind: fsop.Pread, Handle: l.seqHandle(w), Offset: int64(i/l.conc) * l.block, Length: l.block}
	}},
}

func init() {
	specByName(OpSeqWrite).check = func(l *level, res *fsop.Result) error { return wantN(l.block)(l, res) }
	specByName(OpSeqRead).check = func(l *level, res *fsop.Result) error { return wantData(l.block)(l, res) }
}

func specByName(name string) *opSpec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// selectedSpecs returns the specs of names in canonical order.
func selectedSpecs(names []string) []*opSpec {
	var out []*opSpec
	for _, s := range specs {
		for _, n := range names {
			if n == s.name {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func wantN(n int64) func(*level, *fsop.Result) error {
	return func(_ *level, res *fsop.Result) error {
		if res.N != n {
			return fmt.Errorf("wrote %d bytes, want %d", res.N, n)
		}
		return nil
	}
}

func wantData(n int64) func(*level, *fsop.Result) error {
	return func(_ *level, res *fsop.Result) error {
		if int64(len(res.Data)) != n {
			return fmt.Errorf("read %d bytes, want %d", len(res.Data), n)
		}
		return nil
	}
}

// payload is n bytes whose content depends on i (a write changes the file).
func payload(n int, i int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

// level is one target at one concurrency: its own directory tree
// (prefix/w<k> per client, prefix/rd for readdir), handles, and which
// per-index names exist.
type level struct {
	target  string
	conc    int
	prefix  string
	base    uint64 // handle ids: base+2k (data file), base+2k+1 (sequential file)
	block   int64
	seqData []byte
	exist   map[string]bool // per-index names that exist, by prefix
	opened  bool            // data handles open
	seqOpen bool            // sequential handles open
	seqDone bool            // the sequential files hold their data
}

func newLevel(target string, targetIdx, conc int, block int64) *level {
	return &level{target: target, conc: conc, prefix: "bench-" + target + "-c" + strconv.Itoa(conc),
		base: uint64(targetIdx+1)<<40 | uint64(conc)<<20, block: block, exist: map[string]bool{}}
}

func (l *level) client(w int) string { return l.prefix + "/w" + strconv.Itoa(w) }

// indexed is the i-th name with prefix p, in client directory i mod conc.
func (l *level) indexed(p string, i int) string {
	return l.client(i%l.conc) + "/" + p + strconv.Itoa(i)
}

func (l *level) handle(w int) uint64    { return l.base + uint64(2*w) }
func (l *level) seqHandle(w int) uint64 { return l.base + uint64(2*w+1) }

// setupOps make the level's tree: the client directories, each with a
// 64 KiB data file (opened) and a file to stat and chmod.
func (l *level) setupOps() []fsop.Op {
	ops := []fsop.Op{{Kind: fsop.Mkdir, Path: l.prefix, Mode: 0o755}}
	for w := 0; w < l.conc; w++ {
		d := l.client(w)
		ops = append(ops,
			fsop.Op{Kind: fsop.Mkdir, Path: d, Mode: 0o755},
			fsop.Op{Kind: fsop.WriteFile, Path: d + "/data", Data: payload(dataSize, w)},
			fsop.Op{Kind: fsop.Create, Path: d + "/s", Mode: 0o644},
			fsop.Op{Kind: fsop.Open, Path: d + "/data", Handle: l.handle(w), Flags: unix.O_RDWR})
	}
	return ops
}

// readdirOps make the readdir directory.
func (l *level) readdirOps() []fsop.Op {
	ops := []fsop.Op{{Kind: fsop.Mkdir, Path: l.prefix + "/rd", Mode: 0o755}}
	for j := 0; j < readdirSize; j++ {
		ops = append(ops, fsop.Op{Kind: fsop.Create, Path: l.prefix + "/rd/e" + strconv.Itoa(j), Mode: 0o644})
	}
	return ops
}

// makeOp makes per-index name p for index i, unmeasured.
func (l *level) makeOp(p string, i int) fsop.Op {
	if p == nameDir {
		return fsop.Op{Kind: fsop.Mkdir, Path: l.indexed(p, i), Mode: 0o755}
	}
	return fsop.Op{Kind: fsop.Create, Path: l.indexed(p, i), Mode: 0o644, Exclusive: true}
}

func (l *level) seqOpenOps() []fsop.Op {
	var ops []fsop.Op
	for w := 0; w < l.conc; w++ {
		ops = append(ops, fsop.Op{Kind: fsop.Open, Path: l.client(w) + "/seq", Handle: l.seqHandle(w),
			Flags: unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC, Mode: 0o644})
	}
	return ops
}

// closeOps close the handles still open.
func (l *level) closeOps() []fsop.Op {
	var ops []fsop.Op
	for w := 0; w < l.conc; w++ {
		if l.opened {
			ops = append(ops, fsop.Op{Kind: fsop.Close, Handle: l.handle(w)})
		}
		if l.seqOpen {
			ops = append(ops, fsop.Op{Kind: fsop.Close, Handle: l.seqHandle(w)})
		}
	}
	return ops
}
