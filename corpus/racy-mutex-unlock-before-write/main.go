// corpus: racy
// covers: mutex, read-modify-write, string-keys, read, write, write/read
// A worker reads m under mu but releases mu before writing back; a later locked read races with that write.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	m := map[string]int{"n": 1}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		mu.Lock()
		v := m["n"]
		mu.Unlock()
		m["n"] = v + 1 // race
	}()
	got := 0
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		got = m["n"] // race
		mu.Unlock()
	}()
	wg.Wait()
	_ = got
}
