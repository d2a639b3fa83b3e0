//go:build !linux

package testenv

import "errors"

// startPrivate: a private cluster tied to the test binary needs Linux
// (devenv.StartTiedCluster).
func startPrivate() (string, error) {
	return "", errors.New("starting a private cluster for the tests needs Linux")
}
