// corpus: safe
// covers: sync-map, string-keys, write, read
// A goroutine builds a map and publishes it with sync.Map.Store; main loads it and reads it. sync.Map's Store synchronises before the Load that observes it.

package main

import (
	"fmt"
	"runtime"
	"sync"
)

func main() {
	var published sync.Map
	go func() {
		config := map[string]int{"retries": 3}
		config["timeout"] = 30
		published.Store("config", config)
	}()
	for {
		if value, ok := published.Load("config"); ok {
			config := value.(map[string]int)
			fmt.Println(config["retries"] + config["timeout"])
			return
		}
		runtime.Gosched()
	}
}
