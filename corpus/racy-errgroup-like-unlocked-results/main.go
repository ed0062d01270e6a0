// corpus: racy
// covers: errgroup-like, waitgroup, mutex, string-keys, write, write/write
// Two tasks of a stdlib-only errgroup write the shared results map without a lock.

package main

import (
	"sync"
	"time"
)

type group struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.err = err
			}
			g.mu.Unlock()
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

func main() {
	var g group
	results := map[string]int{}
	g.Go(func() error {
		results["fast"] = 1 // race
		return nil
	})
	g.Go(func() error {
		time.Sleep(20 * time.Millisecond)
		results["slow"] = 2 // race
		return nil
	})
	_ = g.Wait()
}
