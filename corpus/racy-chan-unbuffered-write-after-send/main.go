// corpus: racy
// covers: chan-unbuffered, map-of-slices, read, write, write/read
// The producer keeps appending to the map after sending it over an unbuffered channel.

package main

import "time"

func main() {
	m := map[string][]int{"a": {1}}
	ch := make(chan map[string][]int)
	done := make(chan int)
	go func() {
		got := <-ch
		time.Sleep(20 * time.Millisecond)
		xs := got["a"] // race
		done <- len(xs)
	}()
	ch <- m
	m["a"] = append(m["a"], 2) // race
	<-done
}
