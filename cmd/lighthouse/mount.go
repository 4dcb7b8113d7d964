package main

import (
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/fusemount"
	"github.com/lighthouse-fs/lighthouse/primary"
	"github.com/lighthouse-fs/lighthouse/shadow"
	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

// backends are the FUSE libraries a store can be served through, by the
// names LIGHTHOUSE_FUSE_BACKEND uses.
var backends = map[string]fusemount.MountFunc{
	"bazil":  primary.Mount,
	"gofuse": shadow.Mount,
}

func backendNames() string {
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, "|")
}

// mountFlags are the store and cache settings shared by every subcommand
// that serves a mount.
type mountFlags struct {
	backend string
	data    string
	sync    string
	nameMax int
	opts    fusemount.Options
}

// options are the mount options the flags ask for, or an error that says
// how to make allow_other possible for this user.
func (f *mountFlags) options() (fusemount.Options, error) {
	return f.opts, fusemount.CheckAllowOther(f.opts, os.Geteuid(), fusemount.FuseConf)
}

// allowOtherUsage is --allow-other's help, shared by every command that
// serves a mount.
const allowOtherUsage = "let every user's programs use the mount (allow_other; the kernel checks their access, default_permissions); " +
	"false: only the user who mounts it. A user other than root needs user_allow_other in " + fusemount.FuseConf

func (f *mountFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.backend, "backend", "", "FUSE library: "+backendNames())
	fl.StringVar(&f.data, "data", "", "store directory (snapshot and log); empty keeps the store in memory")
	fl.StringVar(&f.sync, "sync", string(store.SyncAlways), "fsync policy before acknowledging a mutation: always|batch|none")
	fl.IntVar(&f.nameMax, "name-max", 0, fmt.Sprintf("longest name the store accepts (0: %d, as ext4; at most %d, above the kernel's FUSE limit, so the library's own limit shows)", store.MaxNameLen, store.NameMaxLimit))
	fl.DurationVar(&f.opts.EntryTimeout, "entry-timeout", 0, "kernel cache time for name lookups (0: every lookup reaches the library)")
	fl.DurationVar(&f.opts.AttrTimeout, "attr-timeout", 0, "kernel cache time for attributes")
	fl.DurationVar(&f.opts.NegativeTimeout, "negative-timeout", 0, "kernel cache time for missing names (go-fuse only; bazil cannot express it)")
	fl.BoolVar(&f.opts.KeepCache, "keep-cache", false, "keep file pages cached across opens")
	fl.BoolVar(&f.opts.DirectIO, "direct-io", false, "bypass the page cache for file data")
	fl.BoolVar(&f.opts.Debug, "fuse-debug", false, "log every FUSE request")
	registerAllowOther(fl, &f.opts.OwnerOnly, allowOtherUsage)
}

// openStore opens the store to serve; run by another user than root, that
// user owns its root (store.OwnRoot).
func (f *mountFlags) openStore() (*store.Store, error) {
	var st *store.Store
	if f.data == "" {
		st = store.OpenMemory(store.Options{NameMax: f.nameMax})
	} else {
		policy, err := store.ParseSyncPolicy(f.sync)
		if err != nil {
			return nil, err
		}
		if st, err = store.Open(f.data, store.Options{Sync: policy, NameMax: f.nameMax}); err != nil {
			return nil, err
		}
	}
	if uid := os.Geteuid(); uid != 0 {
		if err := st.OwnRoot(uint32(uid), uint32(os.Getegid())); err != nil {
			st.Close()
			return nil, fmt.Errorf("give the store root to uid %d: %w", uid, err)
		}
	}
	return st, nil
}

func mountCmd() *cobra.Command {
	var f mountFlags
	cmd := &cobra.Command{
		Use:   "mount --backend bazil|gofuse [--data DIR] MOUNTPOINT",
		Short: "Serve a store on MOUNTPOINT through one FUSE library until interrupted",
		Long: `Serve a store on MOUNTPOINT through bazil.org/fuse or go-fuse until SIGINT or
SIGTERM, then unmount cleanly. A stale mount left on MOUNTPOINT by a crashed
process is cleaned first. Do not run programs on the mount from this process.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mount, ok := backends[f.backend]
			if !ok {
				return verdict.Usage(fmt.Errorf("unknown --backend %q: want %s", f.backend, backendNames()))
			}
			opts, err := f.options()
			if err != nil {
				return verdict.Usage(err)
			}
			st, err := f.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			unmount, done, err := mount(args[0], st, opts)
			if err != nil {
				return fmt.Errorf("mount %s with %s: %w (is fuse3 installed and /dev/fuse present? are you root?)", args[0], f.backend, err)
			}
			log.Printf("serving %s on %s with %s (data: %s)", storeKind(f.data), args[0], f.backend, orMemory(f.data))
			select {
			case <-cmd.Context().Done():
				log.Printf("unmounting %s", args[0])
				if err := unmount(); err != nil {
					return fmt.Errorf("unmount %s: %w", args[0], err)
				}
				select {
				case err := <-done:
					return err
				case <-time.After(10 * time.Second):
					return fmt.Errorf("serve loop on %s did not end after unmount", args[0])
				}
			case err := <-done:
				if err != nil {
					return fmt.Errorf("serve %s: %w", args[0], err)
				}
				return fmt.Errorf("%s was unmounted from outside", args[0])
			}
		},
	}
	f.register(cmd)
	return cmd
}

func storeKind(data string) string {
	if data == "" {
		return "a memory store"
	}
	return "the store"
}

func orMemory(data string) string {
	if data == "" {
		return "memory only"
	}
	return data
}
