// corpus: safe
// covers: mutex, defer-unlock, waitgroup, int-keys, write, read-comma-ok
// Two goroutines write m while main reads it; every access holds mu, released with defer.

package main

import (
	"fmt"
	"sync"
)

type counter struct {
	mu sync.Mutex
	m  map[int]int
}

func (c *counter) add(k, d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] += d
}

func (c *counter) get(k int) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func main() {
	c := &counter{m: map[int]int{}}
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				c.add(i%10, g+1)
			}
		}(g)
	}
	seen := 0
	for i := 0; i < 50; i++ {
		if _, ok := c.get(i % 10); ok {
			seen++
		}
	}
	wg.Wait()
	v, _ := c.get(3)
	fmt.Println(v, seen >= 0)
}
