// corpus: safe
// covers: errgroup-like, waitgroup, once, mutex, defer-unlock, string-keys, write, read
// A stdlib-only errgroup (WaitGroup + Once for the first error) runs tasks that record results in a mutex-protected map.

package main

import (
	"errors"
	"fmt"
	"sync"
)

type group struct {
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
}

func (g *group) Go(f func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(); err != nil {
			g.errOnce.Do(func() { g.err = err })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

func main() {
	var g group
	var mu sync.Mutex
	results := map[string]int{}
	for _, name := range []string{"a", "bb", "ccc", ""} {
		name := name
		g.Go(func() error {
			if name == "" {
				return errors.New("empty name")
			}
			mu.Lock()
			defer mu.Unlock()
			results[name] = len(name)
			return nil
		})
	}
	err := g.Wait()
	fmt.Println(err, results["ccc"])
}
