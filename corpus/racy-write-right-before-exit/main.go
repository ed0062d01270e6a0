// corpus: racy
// covers: exit, int-keys, read, write, write/read
// The race's second access is the last thing the process does: a goroutine writes the map the
// main goroutine read, then ends the process at once. Its event must not be lost at exit.

package main

import (
	"os"
	"time"
)

func main() {
	jobs := map[int]string{1: "a"}
	go func() {
		time.Sleep(10 * time.Millisecond)
		jobs[2] = "b" // race
		os.Exit(0)
	}()
	_ = jobs[1] // race
	time.Sleep(time.Hour)
}
