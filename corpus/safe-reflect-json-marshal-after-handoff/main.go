// corpus: safe
// covers: reflect, iterate, string-keys, write, chan-unbuffered
// The twin of racy-reflect-json-marshal-while-written: the goroutine's write is received before main encodes the map through reflect.

package main

import (
	"encoding/json"
	"fmt"
)

func main() {
	m := map[string]int{"a": 1}
	done := make(chan bool)
	go func() {
		m["b"] = 2
		done <- true
	}()
	<-done
	encoded, _ := json.Marshal(m)
	fmt.Println(string(encoded))
}
