// corpus: racy
// covers: once, interface-keys, read-comma-ok, write, write/read
// once.Do orders the initialisation, but a write made after Do returns is unordered with another goroutine's read.

package main

import (
	"sync"
	"time"
)

func main() {
	var once sync.Once
	var reg map[interface{}]int
	initReg := func() { reg = map[interface{}]int{"a": 1} }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		once.Do(initReg)
		reg[2] = 2 // race
	}()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		once.Do(initReg)
		_, ok := reg["a"] // race
		_ = ok
	}()
	wg.Wait()
}
