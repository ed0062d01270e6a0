// corpus: racy
// covers: afterfunc, timer-reset, int-keys, read-comma-ok, write, write/read
// Main resets an armed timer and keeps writing m; the callback reads m without any further synchronisation.

package main

import "time"

func main() {
	m := map[int]string{1: "armed"}
	done := make(chan string)
	t := time.AfterFunc(time.Hour, func() {
		v, _ := m[2] // race
		done <- v
	})
	t.Reset(20 * time.Millisecond)
	// Resetting the timer orders what came before it, not this write.
	m[2] = "late" // race
	if v := <-done; v != "late" {
		m[3] = "missed"
	}
}
