// corpus: safe
// covers: io, unix-socket, string-keys, read, write
// A server goroutine fills a map and then answers on a Unix socket connection; the client reads the map after it got the answer: the connection orders the two.

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

func main() {
	dir, err := os.MkdirTemp("", "unix-handoff")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	listener, err := net.Listen("unix", filepath.Join(dir, "socket"))
	if err != nil {
		panic(err)
	}
	defer listener.Close()
	config := map[string]string{}
	go func() {
		conn, err := listener.Accept()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		config["mode"] = "ready"
		conn.Write([]byte("ok"))
	}()
	conn, err := net.Dial("unix", listener.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	var answer [2]byte
	if _, err := conn.Read(answer[:]); err != nil {
		panic(err)
	}
	fmt.Println(config["mode"])
}
