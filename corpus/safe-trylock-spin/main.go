// corpus: safe
// covers: trylock, mutex, waitgroup, struct-keys, write, read
// Four goroutines spin on TryLock and only touch the grid map once the lock is actually held.

package main

import (
	"fmt"
	"runtime"
	"sync"
)

type point struct{ x, y int }

func main() {
	var mu sync.Mutex
	grid := map[point]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				for !mu.TryLock() {
					runtime.Gosched()
				}
				grid[point{g, i % 5}]++
				_ = grid[point{0, 0}]
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	fmt.Println(grid[point{1, 2}])
}
