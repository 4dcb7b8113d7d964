package main

import (
	"fmt"
	"log"

	"github.com/spf13/cobra"

	"github.com/lighthouse-fs/lighthouse/store"
	"github.com/lighthouse-fs/lighthouse/verdict"
)

func storeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Maintain a store's directory (snapshot and log)",
	}
	cmd.AddCommand(storeRepairCmd())
	return cmd
}

func storeRepairCmd() *cobra.Command {
	var dir string
	var clear bool
	cmd := &cobra.Command{
		Use:   "repair --dir DIR [--clear-loss]",
		Short: "Open a store whose log is damaged before its end, moving the damaged part aside",
		Long: `A store whose log is damaged before its end (intact records after a bad one)
refuses to open: cutting there would drop acknowledged records. repair opens
it anyway: it keeps every record before the damage and moves the log from the
damage on (the rest of that segment and every later segment) to
DIR/quarantine/<time>/, byte for byte, and records the loss in
DIR/dataloss.json. A bridge on a store with a recorded loss answers /readyz
with 503 and reports data_loss in /v1/info until it is restored from a good
copy (PUT /v1/snapshot) or the loss is cleared with --clear-loss (the
quarantined log stays). Run it with no bridge on DIR.

Exit status: 0 repaired, cleared or nothing to repair, 2 usage, 4 the store
cannot be opened (a bridge has it open, an I/O error).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return verdict.Usage(fmt.Errorf("--dir is required"))
			}
			s, err := store.Open(dir, store.Options{Repair: !clear, CompactBytes: -1, Logf: log.Printf})
			if err != nil {
				return err
			}
			rec := s.Recovery()
			if clear {
				err = s.ClearDataLoss()
			}
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			switch {
			case clear:
				fmt.Fprintf(cmd.OutOrStdout(), "%s: data loss cleared (the quarantined log, if any, stays)\n", dir)
			case rec.RepairedBytes > 0:
				fmt.Fprintf(cmd.OutOrStdout(), "%s: repaired: %d bytes of log after lsn %d moved to %s; the store reports data loss until restored or cleared\n",
					dir, rec.RepairedBytes, rec.LastLSN, rec.DataLoss.Quarantine)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "%s: no damage before the end of the log (lsn %d; torn tail cut: %d bytes)\n", dir, rec.LastLSN, rec.CutBytes)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the store's directory (a bridge's --data)")
	cmd.Flags().BoolVar(&clear, "clear-loss", false, "forget a recorded data loss instead of repairing")
	return cmd
}
