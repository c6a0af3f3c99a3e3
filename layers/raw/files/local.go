package files

import (
	"os"
	"path/filepath"
)

// renameLocal moves a file between two local folders, making the
// destination's directory first.
func renameLocal(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.Rename(from, to)
}
