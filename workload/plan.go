package workload

import (
	"fmt"
	"math/rand/v2"
	"path"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Tree size at the default Ops; smaller runs get fewer packages.
const (
	maxPackages     = 20
	opsPerPackage   = 600 // one package per this many ops, up to maxPackages
	filesPerPackage = 15
	releaseDir      = "releases/v1.0"
)

// packageFiles are a package's files, relative to its directory; its
// directories are the package, internal/ and internal/testdata/.
var packageFiles = [filesPerPackage]struct {
	name     string
	min, max int // size range, bytes
}{
	{"README.md", 600, 2000},
	{"doc.go", 300, 1200},
	{"%s.go", 2000, 6000},
	{"%s_test.go", 1500, 5000},
	{"api.go", 1500, 5000},
	{"types.go", 1000, 4000},
	{"errors.go", 500, 2000},
	{"Makefile", 200, 800},
	{"internal/impl.go", 2000, 7000},
	{"internal/impl_test.go", 1500, 5000},
	{"internal/cache.go", 1000, 4000},
	{"internal/pool.go", 800, 3000},
	{"internal/testdata/golden.txt", 500, 3000},
	{"internal/testdata/input.json", 300, 2000},
	{"internal/testdata/large.bin", 16 << 10, 32 << 10},
}

var releaseFiles = []string{"LICENSE", "VERSION", "CHANGES.md", "api.txt"}

// pkgInfo is one package of the tree.
type pkgInfo struct {
	name  string   // "pkg07"
	dir   string   // root/pkg07
	dirs  []string // dir, dir/internal, dir/internal/testdata
	files []string // the setup's files
	owner int      // the client that works here most
}

// plan is the whole workload for one Config: the setup ops, and what each
// client needs to generate its mix.
type plan struct {
	cfg         Config
	root        string
	pkgs        []pkgInfo
	rootSetup   []fsop.Op
	clientSetup [][]fsop.Op
}

func (p *plan) at(parts ...string) string { return path.Join(append([]string{p.root}, parts...)...) }

func newPlan(cfg Config) *plan {
	p := &plan{cfg: cfg, root: cfg.Root}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	n := min(maxPackages, max(1, cfg.Ops/opsPerPackage))
	for i := range n {
		name := fmt.Sprintf("pkg%02d", i)
		pk := pkgInfo{name: name, dir: p.at(name), owner: i % cfg.Clients}
		pk.dirs = []string{pk.dir, pk.dir + "/internal", pk.dir + "/internal/testdata"}
		for _, f := range packageFiles {
			nm := f.name
			if nm == "%s.go" || nm == "%s_test.go" {
				nm = fmt.Sprintf(nm, name)
			}
			pk.files = append(pk.files, pk.dir+"/"+nm)
		}
		p.pkgs = append(p.pkgs, pk)
	}

	// The top of the tree.
	add := func(ops *[]fsop.Op, op fsop.Op) { *ops = append(*ops, op) }
	r := &p.rootSetup
	add(r, fsop.Op{Kind: fsop.Mkdir, Path: p.root, Mode: 0o755})
	add(r, fsop.Op{Kind: fsop.WriteFile, Path: p.at("README.md"), Data: prose(rng, "work", 1500)})
	add(r, fsop.Op{Kind: fsop.Mkdir, Path: p.at("releases"), Mode: 0o755})
	add(r, fsop.Op{Kind: fsop.Mkdir, Path: p.at(releaseDir), Mode: 0o755})
	for _, f := range releaseFiles {
		add(r, fsop.Op{Kind: fsop.WriteFile, Path: p.at(releaseDir, f), Data: prose(rng, f, 200+rng.IntN(3000))})
	}
	add(r, fsop.Op{Kind: fsop.Symlink, Path: p.at("latest"), Target: releaseDir})
	add(r, fsop.Op{Kind: fsop.Mkdir, Path: p.at("shared"), Mode: 0o755})
	add(r, fsop.Op{Kind: fsop.WriteFile, Path: p.at("shared", "README.md"), Data: prose(rng, "shared", 2500)})
	add(r, fsop.Op{Kind: fsop.WriteFile, Path: p.at("shared", "CHANGELOG.log"), Data: []byte("# changelog\n")})
	add(r, fsop.Op{Kind: fsop.Setxattr, Path: p.at("shared", "README.md"), Name: "user.owner", Value: []byte("team")})
	add(r, fsop.Op{Kind: fsop.Mkdir, Path: p.at("logs"), Mode: 0o755})
	add(r, fsop.Op{Kind: fsop.Mkdir, Path: p.at("tmp"), Mode: 0o777}) // not 01777: see the package doc on the sticky bit

	// Each client: its log, then the packages it owns.
	p.clientSetup = make([][]fsop.Op, cfg.Clients)
	for c := range cfg.Clients {
		ops := &p.clientSetup[c]
		log := p.logOf(c)
		add(ops, fsop.Op{Kind: fsop.Create, Path: log, Mode: 0o644, Exclusive: true})
		add(ops, fsop.Op{Kind: fsop.Setxattr, Path: log, Name: "user.client", Value: []byte(clientName(c))})
		for _, pk := range p.pkgs {
			if pk.owner != c {
				continue
			}
			for _, d := range pk.dirs {
				add(ops, fsop.Op{Kind: fsop.Mkdir, Path: d, Mode: 0o755})
			}
			for i, f := range pk.files {
				spec := packageFiles[i]
				add(ops, fsop.Op{Kind: fsop.WriteFile, Path: f, Data: source(rng, pk.name, spec.min+rng.IntN(spec.max-spec.min))})
			}
			add(ops, fsop.Op{Kind: fsop.Symlink, Path: pk.dir + "/LICENSE", Target: "../" + releaseDir + "/LICENSE"})
			add(ops, fsop.Op{Kind: fsop.Setxattr, Path: pk.dir + "/README.md", Name: "user.owner", Value: []byte(clientName(c))})
		}
	}
	return p
}

// modelOf is client c's oracle, owning the paths only c writes: its log
// and its packages, unless a client without packages of its own shares
// one (more clients than packages).
func (p *plan) modelOf(c int) *model {
	m := newModel()
	m.exact[p.logOf(c)] = true
	shared := map[int]bool{}
	for other := len(p.pkgs); other < p.cfg.Clients; other++ {
		shared[other%len(p.pkgs)] = true
	}
	for i, pk := range p.pkgs {
		if pk.owner == c && !shared[i] {
			m.own(pk.dir)
		}
	}
	return m
}

func clientName(c int) string { return fmt.Sprintf("c%02d", c) }

func (p *plan) logOf(c int) string { return p.at("logs", clientName(c)+".log") }

// client generates one client's mix. Its model of its own files follows
// the ops it sends, assuming they succeed; it never looks at results.
type client struct {
	p      *plan
	id     int
	name   string
	rng    *rand.Rand
	own    []int    // package indices
	files  []string // own files: the setup's and the ones it created
	gen    []string // own created files (unlink and rename candidates)
	links  []string // own hard links
	seq    int      // makes new names unique
	handle uint64
}

func (p *plan) newClient(c int) *client {
	cl := &client{p: p, id: c, name: clientName(c), rng: rand.New(rand.NewPCG(p.cfg.Seed, uint64(c)+1)),
		handle: 1<<62 | uint64(c)<<40}
	for i, pk := range p.pkgs {
		if pk.owner == c {
			cl.own = append(cl.own, i)
		}
	}
	if len(cl.own) == 0 { // more clients than packages: share one
		cl.own = []int{c % len(p.pkgs)}
	}
	for _, i := range cl.own {
		cl.files = append(cl.files, p.pkgs[i].files...)
	}
	return cl
}

// action builds the ops of one user action and returns them with a commit
// that updates the client's model, called only if the ops are sent.
type action func(c *client) ([]fsop.Op, func())

// mix are the actions and their weights (per mille, roughly).
var mix = []struct {
	weight int
	act    action
}{
	{260, (*client).readOwn},
	{170, (*client).statOwn},
	{40, (*client).readRange},
	{70, (*client).readdir},
	{70, (*client).crossRead},
	{40, (*client).sharedRead},
	{50, (*client).edit},
	{10, (*client).truncate},
	{20, (*client).rewrite},
	{40, (*client).editorSave},
	{40, (*client).appendOwn},
	{20, (*client).appendShared},
	{5, (*client).sharedSave},
	{30, (*client).create},
	{20, (*client).unlink},
	{10, (*client).renameGen},
	{15, (*client).link},
	{10, (*client).symlink},
	{20, (*client).scratch},
	{15, (*client).chmod},
	{5, (*client).chown},
	{15, (*client).utimens},
	{40, (*client).xattr},
	{30, (*client).session},
	{8, (*client).lockfile},
	{4, (*client).statfs},
	{5, (*client).fsync},
}

var mixTotal = func() int {
	t := 0
	for _, m := range mix {
		t += m.weight
	}
	return t
}()

// next returns the ops of the client's next action, at most budget (>= 1)
// of them: an action that does not fit is replaced by a stat.
func (c *client) next(budget int) []fsop.Op {
	w := c.rng.IntN(mixTotal)
	var act action
	for _, m := range mix {
		if w < m.weight {
			act = m.act
			break
		}
		w -= m.weight
	}
	ops, commit := act(c)
	if len(ops) > budget {
		return []fsop.Op{{Kind: fsop.Stat, Path: c.anyFile()}}
	}
	if commit != nil {
		commit()
	}
	return ops
}

func pick[T any](rng *rand.Rand, l []T) T { return l[rng.IntN(len(l))] }

func (c *client) anyFile() string { return pick(c.rng, c.files) }

func (c *client) ownPkg() *pkgInfo { return &c.p.pkgs[pick(c.rng, c.own)] }

func (c *client) newName(dir, prefix, ext string) string {
	c.seq++
	return fmt.Sprintf("%s/%s_%s_%d%s", dir, prefix, c.name, c.seq, ext)
}

func one(op fsop.Op) ([]fsop.Op, func()) { return []fsop.Op{op}, nil }

func (c *client) readOwn() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.ReadFile, Path: c.anyFile()})
}

func (c *client) statOwn() ([]fsop.Op, func()) {
	switch c.rng.IntN(8) {
	case 0:
		return one(fsop.Op{Kind: fsop.Lstat, Path: c.anyFile()})
	case 1:
		return one(fsop.Op{Kind: fsop.Stat, Path: pick(c.rng, c.ownPkg().dirs)})
	case 2:
		return one(fsop.Op{Kind: fsop.Lstat, Path: c.ownPkg().dir + "/LICENSE"})
	}
	return one(fsop.Op{Kind: fsop.Stat, Path: c.anyFile()})
}

func (c *client) readRange() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Read, Path: c.anyFile(), Offset: int64(c.rng.IntN(4096)), Length: int64(256 + c.rng.IntN(4096))})
}

func (c *client) readdir() ([]fsop.Op, func()) {
	switch c.rng.IntN(10) {
	case 0:
		return one(fsop.Op{Kind: fsop.Readdir, Path: c.p.root})
	case 1:
		return one(fsop.Op{Kind: fsop.Readdir, Path: c.p.at("logs")})
	}
	return one(fsop.Op{Kind: fsop.Readdir, Path: pick(c.rng, c.ownPkg().dirs)})
}

// crossRead looks at another client's package, or through the latest
// symlink.
func (c *client) crossRead() ([]fsop.Op, func()) {
	q := &c.p.pkgs[c.rng.IntN(len(c.p.pkgs))]
	switch c.rng.IntN(8) {
	case 0:
		return one(fsop.Op{Kind: fsop.Readdir, Path: pick(c.rng, q.dirs)})
	case 1: // a build tool probing for a file another client may have made
		name := fmt.Sprintf("%s/gen_%s_%d.go", q.dir, clientName(q.owner), 1+c.rng.IntN(40))
		return one(fsop.Op{Kind: fsop.Stat, Path: name})
	case 2:
		return one(fsop.Op{Kind: fsop.ReadFile, Path: c.p.at("latest", pick(c.rng, releaseFiles))})
	case 3:
		return []fsop.Op{{Kind: fsop.Readlink, Path: c.p.at("latest")}, {Kind: fsop.Readdir, Path: c.p.at("latest")}}, nil
	case 4:
		return one(fsop.Op{Kind: fsop.ReadFile, Path: q.dir + "/LICENSE"})
	case 5:
		return one(fsop.Op{Kind: fsop.Stat, Path: pick(c.rng, q.files)})
	}
	return one(fsop.Op{Kind: fsop.ReadFile, Path: pick(c.rng, q.files)})
}

func (c *client) sharedRead() ([]fsop.Op, func()) {
	switch c.rng.IntN(6) {
	case 0:
		return one(fsop.Op{Kind: fsop.ReadFile, Path: c.p.at("shared", "CHANGELOG.log")})
	case 1:
		return one(fsop.Op{Kind: fsop.ReadFile, Path: c.p.at("README.md")})
	case 2:
		return one(fsop.Op{Kind: fsop.Getxattr, Path: c.p.at("shared", "README.md"), Name: "user.owner"})
	case 3:
		return one(fsop.Op{Kind: fsop.Stat, Path: c.p.at("shared", "README.md")})
	}
	return one(fsop.Op{Kind: fsop.ReadFile, Path: c.p.at("shared", "README.md")})
}

// edit patches a few bytes in place.
func (c *client) edit() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Write, Path: c.anyFile(), Offset: int64(c.rng.IntN(2048)),
		Data: source(c.rng, c.name, 16+c.rng.IntN(240))})
}

// truncate cuts a file short and writes a new ending.
func (c *client) truncate() ([]fsop.Op, func()) {
	f := c.anyFile()
	return []fsop.Op{
		{Kind: fsop.Truncate, Path: f, Size: int64(256 + c.rng.IntN(1024))},
		{Kind: fsop.Append, Path: f, Data: source(c.rng, c.name, 64+c.rng.IntN(512))},
	}, nil
}

func (c *client) rewrite() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.WriteFile, Path: c.anyFile(), Data: source(c.rng, c.name, 1000+c.rng.IntN(5000))})
}

// editorSave writes the new version to a swap file, maybe fsyncs it, and
// renames it over the original, as editors do.
func (c *client) editorSave() ([]fsop.Op, func()) {
	f := c.anyFile()
	dir, base := path.Split(f)
	swp := dir + "." + base + ".swp"
	ops := []fsop.Op{{Kind: fsop.WriteFile, Path: swp, Data: source(c.rng, c.name, 800+c.rng.IntN(5000))}}
	if c.rng.IntN(2) == 0 {
		ops = append(ops, fsop.Op{Kind: fsop.Fsync, Path: swp})
	}
	return append(ops, fsop.Op{Kind: fsop.Rename, Path: swp, To: f}), nil
}

func (c *client) appendOwn() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Append, Path: c.p.logOf(c.id), Data: logLine(c.rng, c.name)})
}

func (c *client) appendShared() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Append, Path: c.p.at("shared", "CHANGELOG.log"), Data: logLine(c.rng, c.name)})
}

// sharedSave is an editor save of the shared README: clients race to
// replace it (and the replacement has no user.owner xattr).
func (c *client) sharedSave() ([]fsop.Op, func()) {
	swp := c.p.at("shared", ".README.md."+c.name+".swp")
	return []fsop.Op{
		{Kind: fsop.WriteFile, Path: swp, Data: prose(c.rng, c.name, 1500+c.rng.IntN(2000))},
		{Kind: fsop.Rename, Path: swp, To: c.p.at("shared", "README.md")},
	}, nil
}

// create makes a new source file.
func (c *client) create() ([]fsop.Op, func()) {
	pk := c.ownPkg()
	f := c.newName(pk.dir, "gen", ".go")
	ops := []fsop.Op{
		{Kind: fsop.Create, Path: f, Mode: 0o644, Exclusive: true},
		{Kind: fsop.WriteFile, Path: f, Data: source(c.rng, pk.name, 500+c.rng.IntN(3000))},
	}
	return ops, func() { c.files = append(c.files, f); c.gen = append(c.gen, f) }
}

func remove(l []string, s string) []string {
	for i, x := range l {
		if x == s {
			return append(l[:i], l[i+1:]...)
		}
	}
	return l
}

// unlink removes a created file or a hard link; with neither, a name that
// was never made (ENOENT).
func (c *client) unlink() ([]fsop.Op, func()) {
	switch {
	case len(c.links) > 0 && (len(c.gen) == 0 || c.rng.IntN(2) == 0):
		l := pick(c.rng, c.links)
		return []fsop.Op{{Kind: fsop.Unlink, Path: l}}, func() { c.links = remove(c.links, l) }
	case len(c.gen) > 0:
		f := pick(c.rng, c.gen)
		return []fsop.Op{{Kind: fsop.Unlink, Path: f}}, func() { c.gen, c.files = remove(c.gen, f), remove(c.files, f) }
	}
	return one(fsop.Op{Kind: fsop.Unlink, Path: c.newName(c.ownPkg().dir, "never", ".go")})
}

// renameGen moves a created file into internal/ (or back).
func (c *client) renameGen() ([]fsop.Op, func()) {
	if len(c.gen) == 0 {
		return c.editorSave()
	}
	f := pick(c.rng, c.gen)
	dir := c.ownPkg().dir
	if c.rng.IntN(2) == 0 {
		dir += "/internal"
	}
	to := c.newName(dir, "gen", ".go")
	return []fsop.Op{{Kind: fsop.Rename, Path: f, To: to}}, func() {
		c.gen, c.files = remove(c.gen, f), remove(c.files, f)
		c.gen, c.files = append(c.gen, to), append(c.files, to)
	}
}

// link keeps a hard-linked backup of a file, and looks at it.
func (c *client) link() ([]fsop.Op, func()) {
	f := c.anyFile()
	c.seq++
	l := fmt.Sprintf("%s.orig.%d", f, c.seq)
	ops := []fsop.Op{{Kind: fsop.Link, Path: f, To: l}, {Kind: fsop.Stat, Path: l}}
	if c.rng.IntN(2) == 0 {
		ops = append(ops, fsop.Op{Kind: fsop.ReadFile, Path: l})
	}
	return ops, func() { c.links = append(c.links, l) }
}

// symlink makes a link to a release file, follows it and removes it.
func (c *client) symlink() ([]fsop.Op, func()) {
	pk := c.ownPkg()
	l := c.newName(pk.dir, "current", "")
	return []fsop.Op{
		{Kind: fsop.Symlink, Path: l, Target: "../" + releaseDir + "/" + pick(c.rng, releaseFiles)},
		{Kind: fsop.Readlink, Path: l},
		{Kind: fsop.ReadFile, Path: l},
		{Kind: fsop.Unlink, Path: l},
	}, nil
}

// scratch is a build step: a scratch directory with an output in it,
// listed, then cleaned up (sometimes in the wrong order: ENOTEMPTY).
func (c *client) scratch() ([]fsop.Op, func()) {
	if c.rng.IntN(10) == 0 { // mkdir -p style, on a directory that exists
		return one(fsop.Op{Kind: fsop.Mkdir, Path: pick(c.rng, c.ownPkg().dirs), Mode: 0o755})
	}
	d := c.newName(c.p.at("tmp"), "build", "")
	out := d + "/out.o"
	ops := []fsop.Op{
		{Kind: fsop.Mkdir, Path: d, Mode: 0o755},
		{Kind: fsop.WriteFile, Path: out, Data: source(c.rng, c.name, 200+c.rng.IntN(4000))},
		{Kind: fsop.Readdir, Path: d},
	}
	if c.rng.IntN(4) == 0 {
		ops = append(ops, fsop.Op{Kind: fsop.Rmdir, Path: d})
	}
	return append(ops, fsop.Op{Kind: fsop.Unlink, Path: out}, fsop.Op{Kind: fsop.Rmdir, Path: d}), nil
}

var modes = []uint32{0o644, 0o600, 0o664, 0o640, 0o444, 0o755}

func (c *client) chmod() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Chmod, Path: c.anyFile(), Mode: pick(c.rng, modes)})
}

func (c *client) chown() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Chown, Path: c.anyFile(), UID: -1, GID: int64(pick(c.rng, []int{0, 100}))})
}

// utimens sets times the way `touch -d` or an unpacker does.
func (c *client) utimens() ([]fsop.Op, func()) {
	const base = int64(1_700_000_000) * 1e9
	t := base + c.rng.Int64N(int64(365*24*3600))*1e9
	return one(fsop.Op{Kind: fsop.Utimens, Path: c.anyFile(), AtimeNs: t + c.rng.Int64N(1e9), MtimeNs: t})
}

// xattr tags files for review, reads tags back and removes them.
func (c *client) xattr() ([]fsop.Op, func()) {
	f := c.anyFile()
	switch c.rng.IntN(10) {
	case 0, 1, 2:
		flags := 0
		if c.rng.IntN(5) == 0 {
			flags = fsop.XattrCreate // EEXIST if already tagged
		}
		return one(fsop.Op{Kind: fsop.Setxattr, Path: f, Name: "user.review",
			Value: fmt.Appendf(nil, "%s:lgtm-%d", c.name, c.rng.IntN(1000)), Flags: flags})
	case 3, 4, 5:
		return one(fsop.Op{Kind: fsop.Getxattr, Path: f, Name: "user.review"}) // ENODATA if untagged
	case 6:
		return one(fsop.Op{Kind: fsop.Getxattr, Path: c.ownPkg().dir + "/README.md", Name: "user.owner"})
	case 7, 8:
		return one(fsop.Op{Kind: fsop.Listxattr, Path: f})
	}
	return one(fsop.Op{Kind: fsop.Removexattr, Path: f, Name: "user.review"})
}

// session works on an open file: a database-like update of one of its
// files, or a build artifact written through a fresh O_CREAT|O_TRUNC handle.
func (c *client) session() ([]fsop.Op, func()) {
	c.handle++
	h := c.handle
	var ops []fsop.Op
	if c.rng.IntN(4) == 0 {
		f := c.ownPkg().dir + "/internal/testdata/out_" + c.name + ".tmp"
		ops = append(ops,
			fsop.Op{Kind: fsop.Open, Path: f, Handle: h, Flags: 2 | 64 | 512, Mode: 0o644}, // O_RDWR|O_CREAT|O_TRUNC
			fsop.Op{Kind: fsop.Pwrite, Handle: h, Offset: 0, Data: source(c.rng, c.name, 1000+c.rng.IntN(8000))})
	} else {
		ops = append(ops,
			fsop.Op{Kind: fsop.Open, Path: c.anyFile(), Handle: h, Flags: 2}, // O_RDWR
			fsop.Op{Kind: fsop.Pread, Handle: h, Offset: 0, Length: 512})
	}
	ops = append(ops,
		fsop.Op{Kind: fsop.Pwrite, Handle: h, Offset: int64(c.rng.IntN(3000)), Data: source(c.rng, c.name, 32+c.rng.IntN(400))},
		fsop.Op{Kind: fsop.Pread, Handle: h, Offset: int64(c.rng.IntN(2000)), Length: int64(256 + c.rng.IntN(2048))})
	if c.rng.IntN(3) == 0 {
		ops = append(ops, fsop.Op{Kind: fsop.Ftruncate, Handle: h, Size: int64(500 + c.rng.IntN(3000))})
	}
	return append(ops, fsop.Op{Kind: fsop.Fsync, Handle: h}, fsop.Op{Kind: fsop.Close, Handle: h}), nil
}

// lockfile takes the shared build lock with an exclusive create (EEXIST
// while another client holds it), notes the build and drops the lock.
func (c *client) lockfile() ([]fsop.Op, func()) {
	lock := c.p.at("shared", "build.lock")
	return []fsop.Op{
		{Kind: fsop.Create, Path: lock, Mode: 0o644, Exclusive: true},
		{Kind: fsop.Append, Path: c.p.at("shared", "CHANGELOG.log"), Data: logLine(c.rng, c.name+" build")},
		{Kind: fsop.Unlink, Path: lock},
	}, nil
}

func (c *client) statfs() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Statfs, Path: c.p.root})
}

func (c *client) fsync() ([]fsop.Op, func()) {
	return one(fsop.Op{Kind: fsop.Fsync, Path: c.anyFile()})
}

// ---- Content ----

var words = []string{"buffer", "cache", "client", "config", "entry", "handle", "index", "inode", "key",
	"lease", "mount", "node", "offset", "page", "path", "queue", "reader", "record", "request", "result",
	"segment", "server", "snapshot", "state", "store", "stream", "table", "token", "value", "writer"}

// source returns n bytes of Go-looking text.
func source(rng *rand.Rand, pkg string, n int) []byte {
	b := make([]byte, 0, n+96)
	b = fmt.Appendf(b, "package %s\n\n", pkg)
	for len(b) < n {
		w1, w2 := pick(rng, words), pick(rng, words)
		switch rng.IntN(4) {
		case 0:
			b = fmt.Appendf(b, "// %s returns the %s of a %s.\n", w1, w2, pick(rng, words))
		case 1:
			b = fmt.Appendf(b, "func %s%d(%s int) int { return %s*%d + %d }\n", w1, rng.IntN(100), w2, w2, rng.IntN(64), rng.IntN(1000))
		case 2:
			b = fmt.Appendf(b, "type %s%s struct {\n\t%s []byte\n\tn int64\n}\n", w1, w2, w2)
		default:
			b = fmt.Appendf(b, "var %s%d = %q\n", w1, rng.IntN(100), w2)
		}
	}
	return b[:n]
}

// prose returns n bytes of Markdown-looking text.
func prose(rng *rand.Rand, title string, n int) []byte {
	b := make([]byte, 0, n+96)
	b = fmt.Appendf(b, "# %s\n\n", title)
	for len(b) < n {
		b = fmt.Appendf(b, "The %s keeps its %s in the %s", pick(rng, words), pick(rng, words), pick(rng, words))
		if rng.IntN(3) == 0 {
			b = append(b, ".\n\n"...)
		} else {
			b = append(b, ". "...)
		}
	}
	return b[:n]
}

func logLine(rng *rand.Rand, who string) []byte {
	return fmt.Appendf(nil, "%s %s %s %d\n", who, pick(rng, []string{"build", "test", "lint", "edit", "review"}),
		pick(rng, words), rng.IntN(100000))
}
