// corpus: racy
// covers: select, chan-buffered, close, string-keys, delete, read-comma-ok, delete/read
// A janitor selecting over a jobs and a quit channel deletes from m while main, which only queued the job, reads m.

package main

import "time"

func main() {
	m := map[string]int{"stale": 1, "fresh": 2}
	jobs := make(chan string, 1)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for {
			select {
			case k := <-jobs:
				delete(m, k) // race
			case <-quit:
				close(done)
				return
			}
		}
	}()
	jobs <- "stale"
	time.Sleep(20 * time.Millisecond)
	_, ok := m["stale"] // race
	_ = ok
	close(quit)
	<-done
}
