// corpus: safe
// covers: pipeline, chan-unbuffered, close, ownership-transfer, string-keys, write, read, delete, range
// Three stages pass each record map downstream; a stage never touches a map after sending it on.

package main

import "fmt"

type record map[string]int

func main() {
	gen := make(chan record)
	enriched := make(chan record)
	go func() {
		for i := 0; i < 5; i++ {
			gen <- record{"id": i, "tmp": 1}
		}
		close(gen)
	}()
	go func() {
		for r := range gen {
			r["double"] = r["id"] * 2
			delete(r, "tmp")
			enriched <- r
		}
		close(enriched)
	}()
	sum := 0
	for r := range enriched {
		for _, v := range r {
			sum += v
		}
	}
	fmt.Println(sum)
}
