// corpus: safe
// covers: once, waitgroup, interface-keys, write, read
// Many goroutines call lookup; the registry map is built inside once.Do and only read afterwards.

package main

import (
	"fmt"
	"sync"
)

var (
	once     sync.Once
	registry map[interface{}]string
)

func lookup(k interface{}) string {
	once.Do(func() {
		registry = map[interface{}]string{}
		registry[1] = "int one"
		registry["one"] = "string one"
		registry[struct{}{}] = "empty struct"
	})
	return registry[k]
}

func main() {
	keys := []interface{}{1, "one", struct{}{}, 2.5}
	out := make([]string, 8)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			out[g] = lookup(keys[g%len(keys)])
		}(g)
	}
	wg.Wait()
	fmt.Println(out)
}
