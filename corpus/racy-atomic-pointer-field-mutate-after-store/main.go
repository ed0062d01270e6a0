// corpus: racy
// covers: atomic-pointer, struct-field, copy-on-write, string-keys, read, write, write/read
// Routes published through an atomic.Pointer[T] field of a struct, but the writer keeps
// changing the map it published instead of storing a fresh one.

package main

import (
	"sync/atomic"
	"time"
)

type routes struct {
	name  string
	table atomic.Pointer[map[string]int]
}

func (r *routes) lookup(path string) int {
	return (*r.table.Load())[path] // race
}

func main() {
	r := &routes{name: "main"}
	done := make(chan int)
	go func() {
		for r.table.Load() == nil {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		done <- r.lookup("/a")
	}()
	m := map[string]int{"/a": 1}
	r.table.Store(&m)
	m["/a"] = 2 // race
	<-done
}
