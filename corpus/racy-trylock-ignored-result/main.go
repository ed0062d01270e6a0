// corpus: racy
// covers: trylock, mutex, struct-keys, write, write/write
// A worker ignores a failed TryLock and writes the grid map while main still holds the lock.

package main

import (
	"sync"
	"time"
)

type point struct{ x, y int }

func main() {
	var mu sync.Mutex
	grid := map[point]string{}
	done := make(chan struct{})
	mu.Lock()
	go func() {
		ok := mu.TryLock()           // fails: main holds mu
		grid[point{1, 1}] = "worker" // race
		if ok {
			mu.Unlock()
		}
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	grid[point{2, 2}] = "main" // race
	mu.Unlock()
	<-done
}
