package front

// Write batching: consecutive WRITE requests on one handle, each at the
// offset where the previous one ended, are gathered into one pwrite op of
// up to maxBatch bytes instead of one op each. A program writing a file in
// 10 KiB blocks (tar, dd, cp of a large file) otherwise waits for a round
// trip through the proxy and both bridges (and an fsync on each with
// --sync always) per block.
//
// Order is kept: any other op the front runs (a write on another handle
// included) first sends every gathered write (pendingWrites.flushAll), so
// each op reaches the bridges after the writes the program made before
// it, as it would unbatched. What
// changes is when a write's own error shows: a batched write answers the
// kernel at once, and an error from sending it is reported by the next
// request on its handle (a write, fsync, or the FLUSH of close(2)), as a
// kernel filesystem with a page cache reports write-back errors. A batch is
// also sent once no write has joined it for batchIdle (and when it is
// batchAge old), so that other clients of the proxy see the data soon
// when the program stops writing.

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

const (
	// maxBatch is the largest pwrite a batch becomes.
	maxBatch = maxWrite
	// maxBatched bounds the bytes gathered over all handles of a mount.
	maxBatched = 64 << 20
	// A batch is sent once no write has joined it for batchIdle, and once
	// its first write is batchAge old.
	batchIdle = 100 * time.Millisecond
	batchAge  = time.Second
)

// pendingWrites are the handles of one mount with gathered writes.
type pendingWrites struct {
	n       atomic.Int64 // handles in set: flushAll's fast path
	bytes   atomic.Int64 // gathered over all handles
	mu      sync.Mutex
	handles map[*handle]struct{}
}

func (p *pendingWrites) add(h *handle) {
	p.mu.Lock()
	if p.handles == nil {
		p.handles = map[*handle]struct{}{}
	}
	if _, ok := p.handles[h]; !ok {
		p.handles[h] = struct{}{}
		p.n.Add(1)
	}
	p.mu.Unlock()
}

func (p *pendingWrites) remove(h *handle) {
	p.mu.Lock()
	if _, ok := p.handles[h]; ok {
		delete(p.handles, h)
		p.n.Add(-1)
	}
	p.mu.Unlock()
}

// flushAll sends every gathered write, but those of except (nil: all),
// before another op runs.
func (p *pendingWrites) flushAll(ctx context.Context, except *handle) {
	if p.n.Load() == 0 {
		return
	}
	p.mu.Lock()
	hs := make([]*handle, 0, len(p.handles))
	for h := range p.handles {
		if h != except {
			hs = append(hs, h)
		}
	}
	p.mu.Unlock()
	for _, h := range hs {
		h.wmu.Lock()
		h.sendLocked(ctx)
		h.wmu.Unlock()
	}
}

// batch is a handle's gathered writes: one contiguous run of bytes.
type batch struct {
	buf   []byte
	off   int64       // file offset of buf[0]
	first time.Time   // of its first write
	timer *time.Timer // sends it batchIdle after its last write
	err   syscall.Errno
}

// write gathers data at off, or sends it (and what was gathered before)
// at once. It returns the errno of an earlier batch that failed, if any:
// that error belongs to this handle's next request.
func (h *handle) write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	// Another handle's batch may be of the same file: it goes first.
	h.fsys.pending.flushAll(ctx, h)
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if errno := h.takeErrLocked(); errno != 0 {
		return 0, errno
	}
	b := &h.batch
	contiguous := len(b.buf) > 0 && off == b.off+int64(len(b.buf))
	fits := len(b.buf)+len(data) <= maxBatch && h.fsys.pending.bytes.Load()+int64(len(data)) <= maxBatched
	if contiguous && fits && time.Since(b.first) < batchAge {
		b.buf = append(b.buf, data...)
		h.fsys.pending.bytes.Add(int64(len(data)))
		b.timer.Reset(batchIdle)
		h.grew(off + int64(len(data)))
		return uint32(len(data)), 0
	}
	h.sendLocked(ctx)
	if errno := h.takeErrLocked(); errno != 0 {
		return 0, errno
	}
	if len(data) >= maxBatch/2 || !fits {
		// Large enough on its own: send it now, as before batching.
		res, errno := h.fsys.runNow(ctx, &fsop.Op{Kind: fsop.Pwrite, Handle: h.id, Offset: off, Data: append([]byte{}, data...)})
		if errno != 0 {
			return 0, errno
		}
		h.grew(off + res.N)
		return uint32(res.N), 0
	}
	// Start a batch. go-fuse reuses data's buffer: copy.
	b.buf = append(make([]byte, 0, max(len(data), 64<<10)), data...)
	b.off, b.first = off, time.Now()
	h.fsys.pending.bytes.Add(int64(len(data)))
	h.fsys.pending.add(h)
	b.timer = time.AfterFunc(batchIdle, func() {
		h.wmu.Lock()
		defer h.wmu.Unlock()
		h.sendLocked(context.Background())
	})
	h.grew(off + int64(len(data)))
	return uint32(len(data)), 0
}

// grew notes that the file now reaches end (see "Open files").
func (h *handle) grew(end int64) {
	if h.node != nil {
		h.node.update(func(a *fsop.Attr) { a.Size = max(a.Size, end) })
	}
}

// sendLocked sends the gathered writes as one pwrite; a failure is kept
// for the handle's next request. wmu is held.
func (h *handle) sendLocked(ctx context.Context) {
	b := &h.batch
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return
	}
	data := b.buf
	b.buf = nil
	h.fsys.pending.remove(h)
	h.fsys.pending.bytes.Add(-int64(len(data)))
	res, errno := h.fsys.runNow(ctx, &fsop.Op{Kind: fsop.Pwrite, Handle: h.id, Offset: b.off, Data: data})
	if errno == 0 && res.N < int64(len(data)) {
		errno = syscall.EIO // the bridge took less than all: the rest is lost
	}
	if errno != 0 && b.err == 0 {
		b.err = errno
	}
}

// takeErrLocked returns and forgets the error of a batch that failed.
func (h *handle) takeErrLocked() syscall.Errno {
	errno := h.batch.err
	h.batch.err = 0
	return errno
}

// flushWrites sends the handle's gathered writes and returns the error of
// any that failed since its last request.
func (h *handle) flushWrites(ctx context.Context) syscall.Errno {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.sendLocked(ctx)
	return h.takeErrLocked()
}
