// Package randid makes random identifiers for object keys, lease owners
// and test names.
package randid

import (
	"crypto/rand"
	"encoding/hex"
)

// Hex returns n random bytes as 2n lower-case hex digits. crypto/rand
// does not fail on the systems Go supports (it aborts the program
// instead), so there is no error to handle.
func Hex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
