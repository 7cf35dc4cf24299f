//go:build unix

package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// termSize is f's terminal width; ok is false when f is no terminal (the
// window-size ioctl answers only on one).
func termSize(f *os.File) (width int, ok bool) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}
