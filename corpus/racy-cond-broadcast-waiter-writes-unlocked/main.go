// corpus: racy
// covers: cond, cond-broadcast, mutex, map-of-slices, read, write, write/read
// After Broadcast, one waiter appends to the map of slices after dropping the lock and another waiter reads it unlocked.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	groups := map[string][]string{"admins": {"ann"}}
	started := false
	var wg sync.WaitGroup
	wait := func() {
		mu.Lock()
		for !started {
			cond.Wait()
		}
		mu.Unlock()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		wait()
		groups["admins"] = append(groups["admins"], "al") // race
	}()
	go func() {
		defer wg.Done()
		wait()
		time.Sleep(20 * time.Millisecond)
		admins := groups["admins"] // race
		_ = admins
	}()
	time.Sleep(5 * time.Millisecond)
	mu.Lock()
	started = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()
}
