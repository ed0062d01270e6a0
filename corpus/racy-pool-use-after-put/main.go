// corpus: racy
// covers: pool, pool-handoff, string-keys, read-comma-ok, write, write/read
// A goroutine keeps writing a map after putting it back in the pool; the goroutine that gets it from the pool reads it.

package main

import (
	"sync"
	"time"
)

var pool = sync.Pool{New: func() interface{} { return map[string]int{} }}

func main() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m := pool.Get().(map[string]int)
		m["a"] = 1
		// The race detector randomly drops a quarter of all Puts, so offer the map several times.
		for i := 0; i < 8; i++ {
			pool.Put(m)
		}
		m["a"] = 2 // race
	}()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		m := pool.Get().(map[string]int)
		v, ok := m["a"] // race
		_, _ = v, ok
	}()
	wg.Wait()
}
