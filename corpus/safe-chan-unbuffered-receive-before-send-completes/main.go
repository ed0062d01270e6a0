// corpus: safe
// covers: chan-unbuffered, string-keys, read, write
// A goroutine reads m and then receives; the receive happens before main's send completes, so main's later write is ordered.

package main

import "fmt"

func main() {
	m := map[string]int{"x": 1}
	ch := make(chan struct{})
	result := make(chan int)
	go func() {
		v := m["x"]
		<-ch
		result <- v
	}()
	ch <- struct{}{}
	m["x"] = 2
	fmt.Println(<-result, m["x"])
}
