// corpus: racy
// covers: go, int-keys, read, write, read/write
// The parent spawns a child that reads m and then writes m itself without waiting for the child.

package main

import "time"

func main() {
	m := map[int]string{1: "one"}
	done := make(chan string)
	go func() {
		v := m[1] // race
		done <- v
	}()
	time.Sleep(20 * time.Millisecond)
	// Nothing orders the child's read before this write.
	m[1] = "uno" // race
	if v := <-done; v != "one" {
		m[2] = v
	}
}
