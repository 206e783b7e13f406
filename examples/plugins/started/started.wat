;; `started`: a plugin with a WebAssembly start function, which runs when an instance is
;; created. `check` returns 0 (success) when the start function ran exactly once in its
;; instance. Written as text: Extism compiles WebAssembly text too, so there is nothing to build.
(module
  (global $runs (mut i32) (i32.const 0))
  (func $start
    (global.set $runs (i32.add (global.get $runs) (i32.const 1))))
  (start $start)
  (func (export "check") (result i32)
    (if (result i32) (i32.eq (global.get $runs) (i32.const 1))
      (then (i32.const 0))
      (else (i32.const 1)))))
