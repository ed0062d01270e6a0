// corpus: racy
// covers: int-keys, read, write, read/write, repeated-access
// A reader looks the map up in a loop while main later fills it in a loop, with nothing
// ordering the two: every access after the first of each loop repeats its goroutine's previous
// one (tracer's kernel programs drop those), and the race between the loops is still to find.

package main

import "time"

func main() {
	m := map[int]int{0: 0}
	done := make(chan int)
	go func() {
		total := 0
		for i := 0; i < 1000; i++ {
			total += m[i%8] // race
		}
		done <- total
	}()
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 1000; i++ {
		m[i%8] = i // race
	}
	<-done
}
