// corpus: racy
// covers: waitgroup, string-keys, read-comma-ok, write, write/read
// A worker calls wg.Done before its last write, so main's read after wg.Wait is unordered with it.

package main

import (
	"sync"
	"time"
)

func main() {
	m := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		wg.Done()       // too early
		m["result"] = 7 // race
	}()
	wg.Wait()
	time.Sleep(20 * time.Millisecond)
	v, ok := m["result"] // race
	_, _ = v, ok
}
