package deploycheck

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// repoRoot returns the repository's top directory, found from this file's
// location so the tests do not depend on the working directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test source file")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// readRepoFile reads a file by its repository-relative path.
func readRepoFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(tb), filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatalf("read %s: %v", rel, err)
	}
	return b
}
