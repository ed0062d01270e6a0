// corpus: racy
// covers: mutex, int-keys, write, write/write
// Two goroutines write m; only one of them holds mu.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	m := map[int]int{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		mu.Lock()
		m[1] = 10 // race
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		m[2] = 20 // race
	}()
	wg.Wait()
}
