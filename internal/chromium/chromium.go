// Package chromium renders a local HTML file in headless Chromium (the
// Debian package chromium, deploy/install-deps.sh) for tests: the DOM the
// browser built, and a screenshot to look at and to check for content.
package chromium

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Path is where the Debian package installs the browser.
const Path = "/usr/bin/chromium"

// Require skips t when the browser is not installed.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Skip("no " + Path + " (Debian package chromium; deploy/install-deps.sh installs it)")
	}
}

// run opens file in a fresh headless browser of width x height with
// extra flags and returns its stdout.
func run(t testing.TB, file string, width, height int, extra ...string) []byte {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), fmt.Sprintf("--window-size=%d,%d", width, height)}, extra...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, Path, append(args, "file://"+abs)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
	}
	return stdout.Bytes()
}

// DOM is the document Chromium built from file.
func DOM(t testing.TB, file string) string {
	t.Helper()
	return string(run(t, file, 1280, 1600, "--dump-dom"))
}

// Screenshot renders file into a width x height PNG at out and returns it.
func Screenshot(t testing.TB, file, out string, width, height int) image.Image {
	t.Helper()
	abs, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	run(t, file, width, height, "--screenshot="+abs)
	fh, err := os.Open(abs)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatalf("screenshot %s: %v", abs, err)
	}
	return img
}

// Share is the fraction of img's pixels whose colour is within 6 of
// rgb (0xRRGGBB) in each channel.
func Share(img image.Image, rgb uint32) float64 {
	want := [3]int{int(rgb >> 16 & 0xff), int(rgb >> 8 & 0xff), int(rgb & 0xff)}
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			got := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			near := true
			for i := range got {
				if d := got[i] - want[i]; d > 6 || d < -6 {
					near = false
				}
			}
			if near {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}
