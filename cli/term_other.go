//go:build !unix

package cli

import "os"

// termSize reports a character device as a terminal of unknown width.
func termSize(f *os.File) (width int, ok bool) {
	st, err := f.Stat()
	return 0, err == nil && st.Mode()&os.ModeCharDevice != 0
}
