// corpus: racy
// covers: rwmutex, rlock-write, string-keys, read-comma-ok, write, write/read
// One goroutine writes m while holding only RLock, which does not exclude another RLock reader.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.RWMutex
	m := map[string]int{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		mu.RLock()       // should be mu.Lock()
		m["config"] = 42 // race
		mu.RUnlock()
	}()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		mu.RLock()
		v, ok := m["config"] // race
		mu.RUnlock()
		_, _ = v, ok
	}()
	wg.Wait()
}
