// corpus: racy
// covers: sync-map, string-keys, write, read
// The twin of safe-sync-map-handoff: the goroutine keeps writing the map after publishing it, so main's read after Load is not ordered with that write.

package main

import (
	"fmt"
	"runtime"
	"sync"
)

func main() {
	var published sync.Map
	done := make(chan bool)
	go func() {
		config := map[string]int{"retries": 3}
		published.Store("config", config)
		config["timeout"] = 30 // race
		done <- true
	}()
	for {
		if value, ok := published.Load("config"); ok {
			config := value.(map[string]int)
			fmt.Println(config["retries"] > 0) // race
			break
		}
		runtime.Gosched()
	}
	<-done
}
