// Command hello is the example reprove rebuilds in its demo: a release pipeline
// stamps the version with -ldflags "-X main.version=...", the classic source of
// binaries that differ although their source is the same.
package main

import (
	"fmt"
	"runtime/debug"
)

var version = "dev"

func main() {
	fmt.Printf("hello %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Printf("built from %s with %s\n", bi.Path, bi.GoVersion)
	}
}
