//go:build unix

package cli

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByOther reports whether st belongs to a user other than the one
// running ferry (or root, who may change any file anyway: a shared
// /etc/ferry/config.yaml is root's, as ssh accepts), and that user's id;
// ok is false when the platform does not say who owns a file.
func ownedByOther(st fs.FileInfo) (uid int, other, ok bool) {
	sys, isStat := st.Sys().(*syscall.Stat_t)
	if !isStat {
		return 0, false, false
	}
	uid = int(sys.Uid)
	return uid, uid != os.Getuid() && uid != 0, true
}
