//go:build !unix

package cli

import "io/fs"

// ownedByOther cannot tell a file's owner on this platform (ok is false):
// only the mode bits are checked.
func ownedByOther(fs.FileInfo) (uid int, other, ok bool) { return 0, false, false }
