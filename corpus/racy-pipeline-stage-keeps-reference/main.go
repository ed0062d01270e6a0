// corpus: racy
// covers: pipeline, chan-unbuffered, close, string-keys, read-comma-ok, write, write/read
// The first stage writes a record map again after sending it to the next stage, which reads it.

package main

import "time"

type record map[string]int

func main() {
	gen := make(chan record)
	out := make(chan int)
	go func() {
		r := record{"id": 1}
		gen <- r
		r["late"] = 1 // race
		close(gen)
	}()
	go func() {
		for r := range gen {
			time.Sleep(20 * time.Millisecond)
			v, _ := r["id"] // race
			out <- v
		}
		close(out)
	}()
	for range out {
	}
}
