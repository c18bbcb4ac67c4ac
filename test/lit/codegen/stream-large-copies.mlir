// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-stream-large-copies | FileCheck %s

// A KV cache's concatenation: a dynamic f32 copy with contiguous rows goes
// to the runtime, both sides cast to unranked; the declaration is added
// once, with a C interface.
// CHECK: func.func private @transfuse_copy_f32(memref<*xf32>, memref<*xf32>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @kv_cache
// CHECK-SAME: (%[[P:.*]]: memref<1x12x?x64xf32>, %[[O:.*]]: memref<1x12x?x64xf32, strided<[?, ?, 64, 1], offset: ?>>)
// CHECK: %[[S:.*]] = memref.cast %[[P]] : memref<1x12x?x64xf32> to memref<*xf32>
// CHECK: %[[D:.*]] = memref.cast %[[O]] : {{.*}} to memref<*xf32>
// CHECK: call @transfuse_copy_f32(%[[S]], %[[D]])
// CHECK: call @transfuse_copy_f32
// CHECK-NOT: memref.copy
func.func @kv_cache(%past: memref<1x12x?x64xf32>,
                    %out: memref<1x12x?x64xf32, strided<[?, ?, 64, 1], offset: ?>>) {
  memref.copy %past, %out : memref<1x12x?x64xf32> to memref<1x12x?x64xf32, strided<[?, ?, 64, 1], offset: ?>>
  memref.copy %past, %out : memref<1x12x?x64xf32> to memref<1x12x?x64xf32, strided<[?, ?, 64, 1], offset: ?>>
  return
}

// -----

// Static and at least 256 KiB (128 x 512 f32): streamed too.
// CHECK-LABEL: func.func @large_static
// CHECK: call @transfuse_copy_f32
func.func @large_static(%a: memref<128x512xf32>, %b: memref<128x512xf32>) {
  memref.copy %a, %b : memref<128x512xf32> to memref<128x512xf32>
  return
}

// -----

// What stays a memref.copy (for transfuse-cpu-copy-to-linalg): static and
// under 256 KiB, rows strided on either side, another element type, rank 0.
// CHECK-NOT: transfuse_copy_f32
// CHECK-LABEL: func.func @stays
// CHECK-COUNT-5: memref.copy
// CHECK-NOT: call
func.func @stays(%a: memref<127x512xf32>, %b: memref<127x512xf32>,
                 %c: memref<?x?xf32, strided<[1, ?]>>, %d: memref<?x?xf32>,
                 %e: memref<?xf16>, %f: memref<?xf16>,
                 %g: memref<f32>, %h: memref<f32>) {
  memref.copy %a, %b : memref<127x512xf32> to memref<127x512xf32>
  memref.copy %c, %d : memref<?x?xf32, strided<[1, ?]>> to memref<?x?xf32>
  memref.copy %d, %c : memref<?x?xf32> to memref<?x?xf32, strided<[1, ?]>>
  memref.copy %e, %f : memref<?xf16> to memref<?xf16>
  memref.copy %g, %h : memref<f32> to memref<f32>
  return
}

// -----

// A present KV cache built in a fresh buffer that the function returns,
// through a subview and a cast: the target leaves the function, streamed.
// CHECK-LABEL: func.func @returned
// CHECK: call @transfuse_copy_f32
// CHECK-NOT: memref.copy
func.func @returned(%past: memref<1x12x?x64xf32>, %n: index) -> memref<?x12x?x64xf32> {
  %alloc = memref.alloc(%n) : memref<1x12x?x64xf32>
  %view = memref.subview %alloc[0, 0, 0, 0] [1, 12, %n, 64] [1, 1, 1, 1] : memref<1x12x?x64xf32> to memref<1x12x?x64xf32, strided<[?, ?, 64, 1]>>
  memref.copy %past, %view : memref<1x12x?x64xf32> to memref<1x12x?x64xf32, strided<[?, ?, 64, 1]>>
  %cast = memref.cast %alloc : memref<1x12x?x64xf32> to memref<?x12x?x64xf32>
  return %cast : memref<?x12x?x64xf32>
}

// -----

// A buffer the function fills, reads again (here a call that returns
// nothing, as the kernels and GEMM calls do) and frees: a copy into it
// stays a memref.copy, even when large (bert-base's Q, K and V, copied
// out of the merged projection). Streamed, the read would come from DRAM.
// CHECK-LABEL: func.func @temporary
// CHECK: memref.alloc
// CHECK-NEXT: memref.copy
// CHECK-NEXT: call @consume
func.func private @consume(memref<?x768xf32>)
func.func @temporary(%qkv: memref<?x2304xf32>, %n: index) {
  %q = memref.subview %qkv[0, 0] [%n, 768] [1, 1] : memref<?x2304xf32> to memref<?x768xf32, strided<[2304, 1]>>
  %alloc = memref.alloc(%n) : memref<?x768xf32>
  memref.copy %q, %alloc : memref<?x768xf32, strided<[2304, 1]>> to memref<?x768xf32>
  call @consume(%alloc) : (memref<?x768xf32>) -> ()
  memref.dealloc %alloc : memref<?x768xf32>
  return
}

// -----

// A buffer that leaves a region (yielded by scf.if, which this pass does
// not follow) counts as leaving the function: streamed.
// CHECK-LABEL: func.func @yielded
// CHECK: call @transfuse_copy_f32
func.func @yielded(%a: memref<?x768xf32>, %n: index, %c: i1) -> memref<?x768xf32> {
  %r = scf.if %c -> memref<?x768xf32> {
    %alloc = memref.alloc(%n) : memref<?x768xf32>
    memref.copy %a, %alloc : memref<?x768xf32> to memref<?x768xf32>
    scf.yield %alloc : memref<?x768xf32>
  } else {
    scf.yield %a : memref<?x768xf32>
  }
  return %r : memref<?x768xf32>
}

// -----

// A buffer passed to a call that returns something: an external callee may
// hand the buffer back (and the caller return it), so the copy streams; a
// callee whose body returns a fresh buffer cannot, so the copy stays.
// CHECK-LABEL: func.func @through_calls
// CHECK: call @transfuse_copy_f32
// CHECK: memref.copy
// CHECK: call @fresh
func.func private @opaque(memref<?x768xf32>) -> memref<?x768xf32>
func.func private @fresh(%a: memref<?x768xf32>) -> memref<?x768xf32> {
  %c0 = arith.constant 0 : index
  %n = memref.dim %a, %c0 : memref<?x768xf32>
  %r = memref.alloc(%n) : memref<?x768xf32>
  return %r : memref<?x768xf32>
}
func.func @through_calls(%a: memref<?x768xf32>, %n: index) -> (memref<?x768xf32>, memref<?x768xf32>) {
  %x = memref.alloc(%n) : memref<?x768xf32>
  memref.copy %a, %x : memref<?x768xf32> to memref<?x768xf32>
  %rx = call @opaque(%x) : (memref<?x768xf32>) -> memref<?x768xf32>
  %y = memref.alloc(%n) : memref<?x768xf32>
  memref.copy %a, %y : memref<?x768xf32> to memref<?x768xf32>
  %ry = call @fresh(%y) : (memref<?x768xf32>) -> memref<?x768xf32>
  memref.dealloc %y : memref<?x768xf32>
  return %rx, %ry : memref<?x768xf32>, memref<?x768xf32>
}
