# proto3 `optional T name = N;` -> `oneof _name { T name = N; }`: the same
# field on the wire, in the form protoc-c 1.4 can compile (see meson.build).
s/^([[:space:]]*)optional[[:space:]]+([A-Za-z0-9_.]+)[[:space:]]+([A-Za-z0-9_]+)[[:space:]]*=[[:space:]]*([0-9]+)[[:space:]]*;/\1oneof _\3 { \2 \3 = \4; }/
