// corpus: safe
// covers: nil-map, string-keys, read, delete
// Two goroutines, each with its own request struct whose lazily created map is still nil, delete from and read it: both are legal no-ops on a nil map and share nothing.

package main

import (
	"fmt"
	"sync"
)

type request struct {
	tags map[string]string
}

func (r *request) untag(key string) string {
	value := r.tags[key]
	delete(r.tags, key)
	return value
}

func main() {
	var wg sync.WaitGroup
	found := make([]int, 2)
	for worker := range found {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &request{}
			for i := 0; i < 2000; i++ {
				if r.untag(fmt.Sprint("k", i%7)) != "" {
					found[worker]++
				}
			}
		}()
	}
	wg.Wait()
	fmt.Println(found[0] + found[1])
}
