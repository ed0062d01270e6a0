// corpus: safe
// covers: cond, cond-broadcast, mutex, waitgroup, map-of-slices, write, read, range
// Three waiters block on a sync.Cond until the map of slices is published and Broadcast wakes them; they only read it.

package main

import (
	"fmt"
	"sync"
)

func main() {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	groups := map[string][]string{}
	published := false
	var wg sync.WaitGroup
	counts := make([]int, 3)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			mu.Lock()
			for !published {
				cond.Wait()
			}
			mu.Unlock()
			for _, names := range groups {
				counts[w] += len(names)
			}
			counts[w] += len(groups["admins"])
		}(w)
	}
	mu.Lock()
	groups["admins"] = append(groups["admins"], "ann")
	groups["users"] = append(groups["users"], "bob", "cy")
	published = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()
	fmt.Println(counts)
}
