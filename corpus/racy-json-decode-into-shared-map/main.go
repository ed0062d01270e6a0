// corpus: racy
// covers: reflect, json, string-keys, write/write
// Two goroutines decode JSON into the same map without a lock: encoding/json writes it through
// reflect.Value.SetMapIndex. Each value's UnmarshalJSON waits until the other decode has
// reached its value too, so both are in flight together however slowly the program runs (a
// decode that ended before the other began would be ordered before it through encoding/json's
// pooled state).

package main

import (
	"encoding/json"
	"fmt"
	"sync"
)

var aStarted, bStarted = make(chan struct{}), make(chan struct{})

// side is a map value whose decoding waits for the other side's decoding to start.
type side string

func (s *side) UnmarshalJSON(data []byte) error {
	mine, other := aStarted, bStarted
	if string(data) == `"b"` {
		mine, other = bStarted, aStarted
	}
	close(mine)
	<-other
	*s = side(data)
	return nil
}

func main() {
	shared := map[string]side{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = json.Unmarshal([]byte(`{"a": "a"}`), &shared) // race
	}()
	go func() {
		defer wg.Done()
		_ = json.Unmarshal([]byte(`{"b": "b"}`), &shared) // race
	}()
	wg.Wait()
	fmt.Println(len(shared))
}
