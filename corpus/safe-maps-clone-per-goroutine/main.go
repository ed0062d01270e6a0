// corpus: safe
// covers: waitgroup, int-keys, clone, write, address-reuse
// One goroutine makes, writes and drops maps; another writes clones of a map nobody writes. No map is shared, but the garbage collector hands a dead map's memory to a new one: a clone (which Go 1.24+ allocates without makemap) must not inherit the history of the dead map at its address.

package main

import (
	"maps"
	"sync"
)

var (
	base           = map[int]int{1: 1, 2: 2, 3: 3}
	lastA, lastB   map[int]int
	madeA, clonedB int
)

func main() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 200000; i++ {
			m := make(map[int]int)
			m[i] = i
			lastA = m
			madeA++
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200000; i++ {
			c := maps.Clone(base)
			c[4] = i
			lastB = c
			clonedB++
		}
	}()
	wg.Wait()
	if madeA != clonedB || len(lastA) != 1 || len(lastB) != 4 {
		panic("lost work")
	}
}
