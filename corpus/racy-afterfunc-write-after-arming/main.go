// corpus: racy
// covers: afterfunc, int-keys, read-comma-ok, write, write/read
// Main keeps writing m after arming time.AfterFunc; the callback reads m without any further synchronisation.

package main

import "time"

func main() {
	m := map[int]string{1: "armed"}
	done := make(chan string)
	time.AfterFunc(20*time.Millisecond, func() {
		v, _ := m[2] // race
		done <- v
	})
	// Arming the timer orders what came before it, not this write.
	m[2] = "late" // race
	if v := <-done; v != "late" {
		m[3] = "missed"
	}
}
