// corpus: racy
// covers: http, string-keys, read, write, write/write
// Two concurrent requests are served by handlers that update a shared map without a lock.

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

func main() {
	hits := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(40 * time.Millisecond)
		hits["slow"]++ // race
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) {
		hits["fast"]++ // race
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var wg sync.WaitGroup
	for i, path := range []string{"/slow", "/fast"} {
		wg.Add(1)
		go func(delay time.Duration, path string) {
			defer wg.Done()
			time.Sleep(delay)
			if resp, err := http.Get(srv.URL + path); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(time.Duration(i)*10*time.Millisecond, path)
	}
	wg.Wait()
}
