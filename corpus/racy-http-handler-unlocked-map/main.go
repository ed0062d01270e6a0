// corpus: racy
// covers: http, string-keys, read, write, write/write
// Two concurrent requests are served by handlers that update a shared map without a lock. Each
// handler waits until the other has started before it writes, so both are in flight together
// however slowly the program runs (a request that finished before the other began would be
// ordered before it through the server's pooled buffers, as under -race).

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

func main() {
	hits := map[string]int{}
	mux := http.NewServeMux()
	aStarted, bStarted := make(chan struct{}), make(chan struct{})
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) {
		close(aStarted)
		<-bStarted
		hits["a"]++ // race
	})
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) {
		close(bStarted)
		<-aStarted
		hits["b"]++ // race
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var wg sync.WaitGroup
	for _, path := range []string{"/a", "/b"} {
		wg.Add(1)
		go func(path string) {
			defer wg.Done()
			if resp, err := http.Get(srv.URL + path); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(path)
	}
	wg.Wait()
}
