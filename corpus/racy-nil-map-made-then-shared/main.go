// corpus: racy
// covers: nil-map, string-keys, write, delete
// The twin of safe-nil-maps-of-separate-structs: one request shared by two goroutines; one creates its map lazily and writes it, the other deletes from it once it is no longer nil.

package main

import (
	"fmt"
	"runtime"
	"sync"
)

type request struct {
	tags map[string]string
}

func (r *request) tag(key, value string) {
	if r.tags == nil {
		r.tags = map[string]string{}
	}
	r.tags[key] = value // race
}

func (r *request) untag(key string) {
	delete(r.tags, key) // race
}

func main() {
	r := &request{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.tag("k", "v")
	}()
	go func() {
		defer wg.Done()
		for r.tags == nil {
			runtime.Gosched()
		}
		r.untag("k")
	}()
	wg.Wait()
	fmt.Println(len(r.tags))
}
