// corpus: racy
// covers: reflect, iterate, string-keys, write
// A goroutine adds to a map while main encodes it with encoding/json, which ranges over it through reflect: nothing orders the two.

package main

import (
	"encoding/json"
	"fmt"
)

func main() {
	m := map[string]int{"a": 1}
	done := make(chan bool)
	go func() {
		m["b"] = 2 // race
		done <- true
	}()
	encoded, _ := json.Marshal(m) // race
	<-done
	fmt.Println(len(encoded) > 0)
}
