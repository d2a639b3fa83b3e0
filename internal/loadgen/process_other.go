//go:build !linux

package loadgen

import "syscall"

// childAttr: only Linux can tie a child's life to its parent's; elsewhere the
// soak's deferred stop is the only clean-up.
func childAttr() *syscall.SysProcAttr { return nil }
