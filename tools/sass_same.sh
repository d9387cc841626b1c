#!/usr/bin/env bash
# Did a source change move the CUDA kernels' machine code? For refactors made without a
# GPU: save the SASS of every kernel object of a build, change the source, rebuild, and
# compare. No GPU needed (cuobjdump reads the objects).
#
#   bash tools/sass_same.sh save DIR [BUILD]      # before the change (BUILD: build/cuda)
#   ninja -C build/cuda jax_mea_cuda_forward jax_mea_cuda_forward_sm90 jax_mea_cuda_decode
#   bash tools/sass_same.sh compare DIR [BUILD]   # after it
#
# Per object: "same" (identical code once registers, predicates, branch targets and
# immediates are renamed), "reordered" (the same instructions in another order; the
# changed lines' first and last positions and, per function, whether any lies past its
# first MMA, i.e. possibly in a loop), or "DIFF" with the instruction counts (then read
# the functions' diff: where the changes lie, and whether the count moved). Session 19
# checked score.h's RowBlockKeys this way: every object "same" or "reordered" in its
# block setup, except the sm_90a object, where 2 of 82 functions (the persistent H128
# instances) have the same 6186 instructions but a few integer ones chosen and ordered
# differently in the block setup and after the consumers' last HGMMA (epilogue and
# producer warp), none in the consumers' tile loop. Exit status 1 when an object differs.
#
# cuobjdump: $CUOBJDUMP, else on PATH, else from the CUDA toolkit (pip: nvidia-cuda-cuobjdump).
set -euo pipefail
mode=${1:?save or compare}; dir=${2:?directory}; build=${3:-build/cuda}
cd "$(dirname "$0")/.."
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)}
objects=$(find "$build/CMakeFiles" -name "*.cu.o" -path "*jax_mea_cuda*" | sort)
dump() {  # normalized SASS of one object: "Function : name" lines, then instructions
  "$CUOBJDUMP" -sass "$1" | { grep -E "Function :|^\s+/\*[0-9a-f]{4,}\*/" || true; } |
    sed -E 's/^\s*\/\*[0-9a-f]+\*\/\s+//; s/ ;.*//; s/\.reuse//g; s/\bU?R[0-9]+\b/R/g;
            s/\bU?P[0-9T]\b/P/g; s/\bB[0-9]\b/B/g; s/0x[0-9a-f]+/X/g'
}
case "$mode" in
  save)
    mkdir -p "$dir"
    for o in $objects; do dump "$o" > "$dir/$(basename "$o").sass"; done
    echo "saved $(ls "$dir" | wc -l) objects' SASS in $dir" ;;
  compare)
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    status=0
    for o in $objects; do
      n=$(basename "$o").sass
      dump "$o" > "$tmp/$n"
      if [ ! -f "$dir/$n" ]; then echo "new        $n"; continue; fi
      if cmp -s "$dir/$n" "$tmp/$n"; then echo "same       $n"; continue; fi
      if [ "$(sort "$dir/$n" | md5sum)" = "$(sort "$tmp/$n" | md5sum)" ]; then
        python3 - "$dir/$n" "$tmp/$n" <<'PY'
import difflib, sys
def funcs(path):
    out, cur = {}, None
    for line in open(path).read().split("\n"):
        if "Function :" in line:
            cur = line.split("Function :")[1].strip(); out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out
a, b = funcs(sys.argv[1]), funcs(sys.argv[2])
moved, in_loop = 0, []
for name, x in a.items():
    y = b.get(name, [])
    if x == y:
        continue
    moved += 1
    first_mma = next((i for i, l in enumerate(x) if "MMA" in l), len(x))
    hunks = [h for h in difflib.SequenceMatcher(None, x, y, autojunk=False).get_opcodes()
             if h[0] != "equal"]
    if any(h[1] > first_mma for h in hunks):
        in_loop.append(name)
print(f"reordered  {sys.argv[2].rsplit('/', 1)[1]}: {moved} functions, "
      f"{len(in_loop)} with a change past their first MMA" +
      (f" (e.g. {in_loop[0][:80]})" if in_loop else ""))
PY
      else
        echo "DIFF       $n: $(grep -vc Function "$dir/$n") -> $(grep -vc Function "$tmp/$n") lines"
        status=1
      fi
    done
    exit $status ;;
  *) echo "usage: $0 save|compare DIR [BUILD]" >&2; exit 2 ;;
esac
