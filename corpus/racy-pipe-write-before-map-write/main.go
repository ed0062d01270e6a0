// corpus: racy
// covers: io, pipe, int-keys, write, write/write
// A goroutine writes a byte to a pipe and then writes the map; main reads the byte and writes the map: the pipe orders what came before the goroutine's write, not the map write after it.

package main

import "os"

func main() {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	m := map[int]int{}
	done := make(chan struct{})
	go func() {
		w.Write([]byte{1})
		m[1] = 1 // race
		close(done)
	}()
	var b [1]byte
	if _, err := r.Read(b[:]); err != nil {
		panic(err)
	}
	m[2] = 2 // race
	<-done
}
