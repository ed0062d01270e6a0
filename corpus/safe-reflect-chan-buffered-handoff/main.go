// corpus: safe
// covers: reflect, chan-buffered, cap-1, ownership-transfer, int-keys, write
// A goroutine hands a map over through a buffered channel with reflect.Value.Send; main waits
// until the value is in the buffer (reflect.Value.Len, no synchronisation), receives it with
// reflect.Value.Recv and writes it.

package main

import (
	"fmt"
	"reflect"
	"runtime"
)

func main() {
	ch := make(chan map[int]int, 1)
	done := make(chan struct{})
	go func() {
		m := map[int]int{}
		m[1] = 1
		reflect.ValueOf(ch).Send(reflect.ValueOf(m))
		close(done)
	}()
	for reflect.ValueOf(ch).Len() == 0 {
		runtime.Gosched()
	}
	v, _ := reflect.ValueOf(ch).Recv()
	m := v.Interface().(map[int]int)
	m[2] = 2
	<-done
	fmt.Println(len(m))
}
