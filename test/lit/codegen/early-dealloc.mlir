// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-early-dealloc | FileCheck %s

// An owned buffer is freed right after the last use of it or of a view of
// it; what is returned, conditionally owned or not known stays with the
// end-of-block dealloc.
// CHECK-LABEL: func.func @last_use
// CHECK: %[[A:.*]] = memref.alloc() : memref<8xf32>
// CHECK: %[[B:.*]] = memref.alloc() : memref<8xf32>
// CHECK: memref.store %{{.*}}, %[[A]]
// CHECK: %[[V:.*]] = memref.subview %[[A]][2] [4] [1]
// CHECK: memref.load %[[V]]
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK: memref.store %{{.*}}, %[[B]]
// CHECK: bufferization.dealloc (%[[B]], %arg1 : memref<8xf32>, memref<8xf32>) if (%true, %arg2) retain (%[[B]] : memref<8xf32>)
func.func @last_use(%x: f32, %m: memref<8xf32>, %own: i1) -> memref<8xf32> {
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %a = memref.alloc() : memref<8xf32>
  %b = memref.alloc() : memref<8xf32>
  memref.store %x, %a[%c0] : memref<8xf32>
  %v = memref.subview %a[2] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: 2>>
  %y = memref.load %v[%c0] : memref<4xf32, strided<[1], offset: 2>>
  memref.store %y, %b[%c0] : memref<8xf32>
  %r = bufferization.dealloc (%a, %b, %m : memref<8xf32>, memref<8xf32>, memref<8xf32>) if (%true, %true, %own) retain (%b : memref<8xf32>)
  return %b : memref<8xf32>
}

// -----

// A view yielded out of a region escapes: the buffer stays.
// CHECK-LABEL: func.func @yielded
// CHECK-NOT: memref.dealloc
// CHECK: bufferization.dealloc (%[[A:.*]] : memref<8xf32>)
func.func @yielded(%c: i1) -> f32 {
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %a = memref.alloc() : memref<8xf32>
  %s = scf.if %c -> memref<8xf32> {
    scf.yield %a : memref<8xf32>
  } else {
    scf.yield %a : memref<8xf32>
  }
  %y = memref.load %s[%c0] : memref<8xf32>
  bufferization.dealloc (%a : memref<8xf32>) if (%true)
  return %y : f32
}

// -----

// A call counts as a use when its callee returns fresh buffers, and the
// buffer is freed after it; when the callee may return its argument, the
// buffer stays. The fresh result is the caller's own buffer: it is freed
// after its last use too; the other call's result stays.
func.func private @fresh(%arg: memref<8xf32>) -> memref<8xf32> {
  %r = memref.alloc() : memref<8xf32>
  memref.copy %arg, %r : memref<8xf32> to memref<8xf32>
  return %r : memref<8xf32>
}
func.func private @same(%arg: memref<8xf32>) -> memref<8xf32> {
  return %arg : memref<8xf32>
}
// CHECK-LABEL: func.func @calls
// CHECK: %[[A:.*]] = memref.alloc()
// CHECK: %[[B:.*]] = memref.alloc()
// CHECK: %[[F:.*]] = call @fresh(%[[A]])
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK: %[[S:.*]] = call @same(%[[B]])
// CHECK-NOT: memref.dealloc %[[B]]
// CHECK: memref.load %[[F]]
// CHECK-NEXT: memref.dealloc %[[F]]
// CHECK: bufferization.dealloc (%[[B]], %[[S]] :
func.func @calls() -> f32 {
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %a = memref.alloc() : memref<8xf32>
  %b = memref.alloc() : memref<8xf32>
  %f = call @fresh(%a) : (memref<8xf32>) -> memref<8xf32>
  %s = call @same(%b) : (memref<8xf32>) -> memref<8xf32>
  %y = memref.load %f[%c0] : memref<8xf32>
  %z = memref.load %s[%c0] : memref<8xf32>
  %w = arith.addf %y, %z : f32
  bufferization.dealloc (%a, %b, %f, %s : memref<8xf32>, memref<8xf32>, memref<8xf32>, memref<8xf32>) if (%true, %true, %true, %true)
  return %w : f32
}

// -----

// A view of the buffer that the dealloc also frees (its base buffer) would
// be freed twice: the buffer stays.
// CHECK-LABEL: func.func @base_buffer_listed
// CHECK-NOT: memref.dealloc
// CHECK: bufferization.dealloc (%[[A:.*]], %[[BASE:.*]] :
func.func @base_buffer_listed(%own: i1) -> f32 {
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %a = memref.alloc() : memref<8xf32>
  %v = memref.subview %a[2] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: 2>>
  %base, %off, %size, %stride = memref.extract_strided_metadata %v : memref<4xf32, strided<[1], offset: 2>> -> memref<f32>, index, index, index
  %y = memref.load %v[%c0] : memref<4xf32, strided<[1], offset: 2>>
  bufferization.dealloc (%a, %base : memref<8xf32>, memref<f32>) if (%true, %own)
  return %y : f32
}

// -----

// A fresh call result that the dealloc names by its base buffer (as
// ownership-based deallocation does) is freed after its last use, not after
// the metadata op; one that is returned stays.
func.func private @make() -> memref<8xf32> {
  %r = memref.alloc() : memref<8xf32>
  return %r : memref<8xf32>
}
// CHECK-LABEL: func.func @call_base_buffer
// CHECK: %[[F:.*]] = call @make()
// CHECK: %[[G:.*]] = call @make()
// CHECK: memref.load %[[F]]
// CHECK-NEXT: memref.dealloc %[[F]] : memref<8xf32>
// CHECK-NOT: memref.dealloc
// CHECK: bufferization.dealloc (%{{.*}} : memref<f32>) if (%true) retain (%[[G]] : memref<8xf32>)
func.func @call_base_buffer() -> (f32, memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %f = call @make() : () -> memref<8xf32>
  %g = call @make() : () -> memref<8xf32>
  %y = memref.load %f[%c0] : memref<8xf32>
  %base, %off, %size, %stride = memref.extract_strided_metadata %f : memref<8xf32> -> memref<f32>, index, index, index
  %gbase, %goff, %gsize, %gstride = memref.extract_strided_metadata %g : memref<8xf32> -> memref<f32>, index, index, index
  %r = bufferization.dealloc (%base, %gbase : memref<f32>, memref<f32>) if (%true, %true) retain (%g : memref<8xf32>)
  return %y, %g : f32, memref<8xf32>
}

// -----

// memref.transpose is a view too (metadata only, though not a
// ViewLikeOpInterface upstream): the buffer is freed after the call that
// reads it through one (the attention kernel reading the heads of a
// projection), not kept to the end of the block.
// CHECK-LABEL: func.func @transposed_view
// CHECK: %[[A:.*]] = memref.alloc() : memref<2x4x3x8xf32>
// CHECK: %[[T:.*]] = memref.transpose %[[A]]
// CHECK: call @read(%[[T]])
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK: call @other()
func.func private @read(memref<2x3x4x8xf32, strided<[96, 8, 24, 1]>>)
func.func private @other()
func.func @transposed_view() {
  %true = arith.constant true
  %a = memref.alloc() : memref<2x4x3x8xf32>
  %t = memref.transpose %a (d0, d1, d2, d3) -> (d0, d2, d1, d3) : memref<2x4x3x8xf32> to memref<2x3x4x8xf32, strided<[96, 8, 24, 1]>>
  call @read(%t) : (memref<2x3x4x8xf32, strided<[96, 8, 24, 1]>>) -> ()
  call @other() : () -> ()
  bufferization.dealloc (%a : memref<2x4x3x8xf32>) if (%true)
  return
}
