// corpus: safe
// covers: select, chan-unbuffered, ownership-transfer, int-keys, write, read
// A goroutine fills a map and hands it over through a select send case; main receives it with a plain receive and keeps using it.

package main

import "time"

func main() {
	handoff := make(chan map[int]int)
	quit := make(chan struct{})
	go func() {
		m := map[int]int{}
		m[1] = 1
		select {
		case handoff <- m:
		case <-quit:
		}
	}()
	m := <-handoff
	time.Sleep(20 * time.Millisecond)
	m[2] = m[1] + 1
	close(quit)
}
