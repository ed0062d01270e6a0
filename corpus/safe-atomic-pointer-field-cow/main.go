// corpus: safe
// covers: atomic-pointer, struct-field, pointer-chain, copy-on-write, string-keys, read, write
// Routes published through an atomic.Pointer[T] field of a struct: each update builds a fresh map
// and stores it; handlers load it through the struct (directly, and through a pointer field of
// their server, reloaded from the stack) and only read the map they got.

package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

type routes struct {
	name  string
	table atomic.Pointer[map[string]int]
}

type server struct {
	id     int
	routes *routes
}

func (r *routes) lookup(path string) int {
	return (*r.table.Load())[path]
}

// The call before the load makes the compiler keep s on the stack and reload it.
func (s *server) handle(path string) int {
	key := strings.TrimSuffix(path, "/")
	return (*s.routes.table.Load())[key] + s.id
}

func (r *routes) add(path string, port int) {
	old := *r.table.Load()
	next := make(map[string]int, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[path] = port
	r.table.Store(&next)
}

func main() {
	r := &routes{name: "main"}
	empty := map[string]int{}
	r.table.Store(&empty)
	s := &server{id: 1, routes: r}
	var wg sync.WaitGroup
	var served atomic.Int64
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			r.add("/p"+strconv.Itoa(i%8), 8000+i)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			served.Add(int64(r.lookup("/p3")))
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			served.Add(int64(s.handle("/p5")))
		}
	}()
	wg.Wait()
	fmt.Println(served.Load() >= 0)
}
