// corpus: safe
// covers: http, mutex, waitgroup, string-keys, write, read
// An HTTP handler counts hits per path in a map guarded by a mutex while concurrent client requests arrive.

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

func main() {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		n := hits[r.URL.Path]
		mu.Unlock()
		fmt.Fprint(w, n)
	}))
	defer srv.Close()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(srv.URL + []string{"/a", "/b"}[i%2])
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}(i)
	}
	wg.Wait()
	mu.Lock()
	fmt.Println(hits["/a"], hits["/b"])
	mu.Unlock()
}
