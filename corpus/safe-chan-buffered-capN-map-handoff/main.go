// corpus: safe
// covers: chan-buffered, cap-n, close, ownership-transfer, int-keys, write, range, read
// A producer sends freshly built maps through a channel of capacity 4; the consumer owns each map after receiving it.

package main

import "fmt"

func main() {
	batches := make(chan map[int]string, 4)
	all := map[int]string{}
	done := make(chan struct{})
	go func() {
		for b := range batches {
			b[-1] = "seen"
			for k, v := range b {
				all[k] = v
			}
		}
		close(done)
	}()
	for i := 0; i < 6; i++ {
		b := map[int]string{}
		for j := 0; j < 3; j++ {
			b[i*10+j] = fmt.Sprint(i, j)
		}
		batches <- b
	}
	close(batches)
	<-done
	fmt.Println(all[52], all[-1])
}
