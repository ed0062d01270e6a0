// corpus: safe
// covers: pprof-labels, string-keys, range, write
// Workers run under pprof labels (a map up to Go 1.23); another goroutine reads the goroutine profile, which prints every goroutine's labels, until it shows them: setting labels and reading the profile order the two, as -race has them.

package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
)

func main() {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pprof.Do(context.Background(), pprof.Labels("worker", fmt.Sprint(i)), func(context.Context) {
				<-release
			})
		}(i)
	}
	// Another goroutine reads the goroutine profile until it shows the four labelled workers:
	// nothing but the profile orders it after the labels were set.
	done := make(chan struct{})
	go func() {
		var profile bytes.Buffer
		for strings.Count(profile.String(), `"worker":`) < 4 {
			profile.Reset()
			pprof.Lookup("goroutine").WriteTo(&profile, 1)
			runtime.Gosched()
		}
		close(done)
	}()
	<-done
	close(release)
	wg.Wait()
	fmt.Println("profiled")
}
