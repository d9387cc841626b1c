#!/usr/bin/env bash
# Session 25, call 7: memcheck of the H64 budget-150 build. Carry [".probe/s25b"].
D=/tmp/s25b; mkdir -p $D; xz -dc .probe/s25b/h64b150.xz > $D/h64b150; chmod +x $D/h64b150
timeout 100 compute-sanitizer --tool memcheck $D/h64b150 --small > $OUT/memcheck_h64b150.log 2>&1
echo "rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck_h64b150.log)"
