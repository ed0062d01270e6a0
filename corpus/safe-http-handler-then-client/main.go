// corpus: safe
// covers: http, io, string-keys, read, write
// A test-style server's handler counts requests in a map; the client reads the count after each response arrives. Only the connection orders the two: the handler writes the map before it writes the response that the client reads.

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
)

func main() {
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen[r.URL.Path]++
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	for _, path := range []string{"/a", "/b", "/a"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(path, seen[path])
	}
}
