// corpus: safe
// covers: chan-unbuffered, ownership-transfer, map-of-slices, read, write, range
// The producer builds a map of slices, hands it over an unbuffered channel and never touches it again.

package main

import "fmt"

func main() {
	ch := make(chan map[string][]int)
	done := make(chan int)
	go func() {
		m := <-ch
		m["odd"] = append(m["odd"], 7)
		total := 0
		for _, xs := range m {
			total += len(xs)
		}
		done <- total
	}()
	m := map[string][]int{}
	for i := 0; i < 6; i++ {
		k := "even"
		if i%2 == 1 {
			k = "odd"
		}
		m[k] = append(m[k], i)
	}
	ch <- m
	fmt.Println(<-done)
}
