// corpus: safe
// covers: mutex, defer-unlock, waitgroup, int-keys, write, clone
// A snapshot taken with maps.Clone under the same mutex as the writes: the clone reads the whole map inside the runtime, ordered with every write by the lock.

package main

import (
	"maps"
	"sync"
)

type store struct {
	mu sync.Mutex
	m  map[int]int
}

func (s *store) put(k, v int) {
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

func (s *store) snapshot() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

func main() {
	s := &store{m: map[int]int{}}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s.put(w*1000+i%32, i)
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			_ = len(s.snapshot())
		}
	}()
	wg.Wait()
}
