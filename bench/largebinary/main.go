// largebinary pulls in most of the standard library so that `cargo xtask bench` can measure how
// long tracer takes to analyse a big Go executable and how much memory that needs. Every package
// is used through a function value so the linker keeps its code.
package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"compress/lzw"
	"compress/zlib"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"debug/macho"
	"debug/pe"
	"encoding/asn1"
	"encoding/csv"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"expvar"
	"fmt"
	"go/ast"
	"go/format"
	"go/importer"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"html/template"
	"image/gif"
	"image/jpeg"
	"image/png"
	"log/slog"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httputil"
	"net/mail"
	"net/rpc"
	"net/smtp"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"testing"
	texttemplate "text/template"
	"time"
)

var uses = []any{
	tar.NewReader, zip.NewReader, bufio.NewReader, bzip2.NewReader, flate.NewReader,
	gzip.NewReader, lzw.NewReader, zlib.NewReader, aes.NewCipher, ecdsa.GenerateKey,
	ed25519.GenerateKey, rsa.GenerateKey, sha512.New, tls.Dial, x509.ParseCertificate,
	sql.Open, dwarf.New, elf.Open, gosym.NewTable, macho.Open, pe.Open, asn1.Marshal,
	csv.NewReader, gob.NewEncoder, json.Marshal, xml.Marshal, expvar.NewInt, ast.Print,
	format.Source, importer.Default, parser.ParseFile, printer.Fprint, token.NewFileSet,
	types.NewPackage, template.New, gif.Decode, jpeg.Decode, png.Decode, slog.New,
	big.NewInt, multipart.NewReader, http.ListenAndServe, httputil.NewSingleHostReverseProxy,
	mail.ParseAddress, rpc.NewServer, smtp.Dial, exec.Command, regexp.MustCompile,
	pprof.StartCPUProfile, sort.Strings, strings.NewReplacer, testing.Benchmark,
	(*types.Config).Check, (*template.Template).Execute, texttemplate.New,
}

func main() {
	var mu sync.Mutex
	counts := map[string]int{}
	for _, use := range uses {
		mu.Lock()
		counts[fmt.Sprintf("%T", use)]++
		mu.Unlock()
	}
	fmt.Fprintln(os.Stderr, len(counts), time.Now().Year() > 2000)
}
