package main

import (
	"fmt"
	"os"

	"github.com/lighthouse-fs/lighthouse/store"
)

// ownRoot gives the store's root directory to the user the bridge runs
// as, when that is not root: the container's bridge runs as uid 1000, a new
// store's root belongs to uid 0, and both libraries mount with
// default_permissions, so the kernel would refuse the bridge's own executor
// (and /readyz's probe) every write in the root. Done once: the change is
// an event in the store's log like any chown. As root it does nothing.
func ownRoot(st *store.Store) error {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if uid == 0 {
		return nil
	}
	a, err := st.Getattr(store.RootIno)
	if err != nil {
		return fmt.Errorf("own the store root: %w", err)
	}
	if a.UID == uid && a.GID == gid {
		return nil
	}
	if _, err := st.Setattr(store.RootIno, store.SetAttr{Valid: store.SetUID | store.SetGID, UID: uid, GID: gid}); err != nil {
		return fmt.Errorf("own the store root: %w", err)
	}
	return nil
}
