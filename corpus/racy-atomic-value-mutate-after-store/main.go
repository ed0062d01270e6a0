// corpus: racy
// covers: atomic-value, copy-on-write, string-keys, read-comma-ok, write, write/read
// The writer publishes a map through atomic.Value and then mutates it in place instead of copying.

package main

import (
	"sync/atomic"
	"time"
)

func main() {
	var cfg atomic.Value
	done := make(chan string)
	go func() {
		for cfg.Load() == nil {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		m := cfg.Load().(map[string]string)
		v, _ := m["mode"] // race
		done <- v
	}()
	m := map[string]string{"mode": "a"}
	cfg.Store(m)
	m["mode"] = "b" // race
	<-done
}
