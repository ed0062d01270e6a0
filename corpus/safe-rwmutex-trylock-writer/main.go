// corpus: safe
// covers: rwmutex, trylock, waitgroup, int-keys, read, write
// Readers look m up under RLock while a writer spins on RWMutex.TryLock and writes only once it
// holds the lock: a successful TryLock is ordered after every reader's RUnlock.

package main

import (
	"fmt"
	"runtime"
	"sync"
)

func main() {
	var mu sync.RWMutex
	m := map[int]int{0: 0}
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				mu.RLock()
				_ = m[i%8]
				mu.RUnlock()
				runtime.Gosched()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			for !mu.TryLock() {
				runtime.Gosched()
			}
			m[i%8] = i
			mu.Unlock()
		}
	}()
	wg.Wait()
	fmt.Println(len(m))
}
