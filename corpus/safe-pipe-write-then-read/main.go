// corpus: safe
// covers: io, pipe, int-keys, read, write
// A goroutine fills a map and then writes a byte to a pipe; main reads the byte and only then reads the map: the data through the pipe orders the two.

package main

import (
	"fmt"
	"os"
)

func main() {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	m := map[int]int{}
	go func() {
		for i := 0; i < 10; i++ {
			m[i] = i * i
		}
		w.Write([]byte{1})
	}()
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil {
		panic(err)
	}
	fmt.Println(m[9])
}
