// corpus: safe
// covers: select, chan-unbuffered, close, owner-goroutine, string-keys, write, delete, read-comma-ok
// One goroutine owns m and serves set, delete and get requests arriving on several channels through select.

package main

import "fmt"

type getReq struct {
	key   string
	reply chan int
}

func main() {
	set := make(chan [2]string)
	del := make(chan string)
	get := make(chan getReq)
	quit := make(chan struct{})
	done := make(chan map[string]int)
	go func() {
		m := map[string]int{}
		for {
			select {
			case kv := <-set:
				m[kv[0]] = len(kv[1])
			case k := <-del:
				delete(m, k)
			case r := <-get:
				v, _ := m[r.key]
				r.reply <- v
			case <-quit:
				done <- m
				return
			}
		}
	}()
	set <- [2]string{"a", "xyz"}
	set <- [2]string{"b", "q"}
	del <- "b"
	reply := make(chan int)
	get <- getReq{"a", reply}
	v := <-reply
	close(quit)
	final := <-done
	_, hasB := final["b"]
	fmt.Println(v, hasB)
}
