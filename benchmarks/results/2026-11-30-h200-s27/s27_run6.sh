#!/usr/bin/env bash
# Session 27 call 6: GPU pytest of the decode-facing tests on main with 0026 (the package
# built by call 5 on the same warm machine).
python3 -m pytest tests/test_decode.py tests/test_gpu_large.py tests/test_examples.py \
  tests/test_decode_plan.py tests/test_tiles_and_edges.py -q -p no:cacheprovider -n 4
# 426 passed in 156.02s
