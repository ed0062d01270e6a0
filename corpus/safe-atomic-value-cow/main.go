// corpus: safe
// covers: atomic-value, copy-on-write, mutex, defer-unlock, string-keys, read, write, range
// Writers copy the map, modify the copy and Store it in an atomic.Value; readers Load and only read.

package main

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

func main() {
	var cfg atomic.Value
	cfg.Store(map[string]string{"mode": "a"})
	var wmu sync.Mutex
	update := func(k, v string) {
		wmu.Lock()
		defer wmu.Unlock()
		old := cfg.Load().(map[string]string)
		next := make(map[string]string, len(old)+1)
		for k2, v2 := range old {
			next[k2] = v2
		}
		next[k] = v
		cfg.Store(next)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				update("k"+strconv.Itoa(g), strconv.Itoa(i))
			}
		}(g)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				m := cfg.Load().(map[string]string)
				_ = m["mode"]
			}
		}()
	}
	wg.Wait()
	fmt.Println(cfg.Load().(map[string]string)["k2"])
}
