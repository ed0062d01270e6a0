// corpus: racy
// covers: cond, cond-signal, mutex, string-keys, read-comma-ok, write, write/read
// The producer signals and unlocks, then writes m once more outside the lock; the woken consumer reads it later.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	m := map[string]int{}
	ready := false
	go func() {
		mu.Lock()
		m["first"] = 1
		ready = true
		cond.Signal()
		mu.Unlock()
		m["late"] = 2 // race
	}()
	mu.Lock()
	for !ready {
		cond.Wait()
	}
	mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	v, ok := m["late"] // race
	_, _ = v, ok
}
