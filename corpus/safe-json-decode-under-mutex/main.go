// corpus: safe
// covers: reflect, json, mutex, waitgroup, string-keys, read, write
// Several goroutines decode JSON into one map (encoding/json writes it through
// reflect.Value.SetMapIndex) and read it back, each under a mutex.

package main

import (
	"encoding/json"
	"fmt"
	"sync"
)

func main() {
	shared := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			document := []byte(fmt.Sprintf(`{"key%d": %d, "common": %d}`, i, i, i))
			mu.Lock()
			_ = json.Unmarshal(document, &shared)
			mu.Unlock()
			mu.Lock()
			_ = shared["common"]
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	fmt.Println(len(shared))
}
