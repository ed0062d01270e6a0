// corpus: racy
// covers: sync-map, interface-keys, read-comma-ok, write, write/read
// Entries go into a sync.Map correctly, but the plain index map kept beside it is written and read without a lock.

package main

import (
	"sync"
	"time"
)

func main() {
	var sm sync.Map
	index := map[interface{}]bool{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sm.Store("user:1", "ann")
		index["user:1"] = true // race
	}()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		if _, ok := sm.Load("user:1"); ok {
			_, indexed := index["user:1"] // race
			_ = indexed
		}
	}()
	wg.Wait()
}
