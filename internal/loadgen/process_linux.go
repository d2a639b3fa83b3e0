package loadgen

import "syscall"

// childAttr makes a started binary die with the soak, however the soak ends.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
