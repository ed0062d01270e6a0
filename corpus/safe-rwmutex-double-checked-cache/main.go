// corpus: safe
// covers: rwmutex, defer-unlock, waitgroup, int-keys, read-comma-ok, write
// A cache looks keys up under RLock and, on a miss, re-checks and fills them under Lock.

package main

import (
	"fmt"
	"sync"
)

type cache struct {
	mu sync.RWMutex
	m  map[int]int
}

func (c *cache) get(k int) int {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	v = k * k
	c.m[k] = v
	return v
}

func main() {
	c := &cache{m: map[int]int{}}
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				c.get((i + g) % 20)
			}
		}(g)
	}
	wg.Wait()
	fmt.Println(c.get(7))
}
