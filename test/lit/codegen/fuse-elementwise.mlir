// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-cpu-fuse-elementwise))' | FileCheck %s

// A log per element, read by a consumer that broadcasts it over a third
// dim (T5's position buckets gathered per head): not fused, so the log is
// computed once per element, not once per head.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#bc = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @costly_broadcast
// CHECK: linalg.generic
// CHECK: math.log
// CHECK: linalg.yield
// CHECK: linalg.generic
// CHECK-NOT: math.log
// CHECK: return
func.func @costly_broadcast(%x: tensor<8x8xf32>) -> tensor<8x8x4xf32> {
  %e2 = tensor.empty() : tensor<8x8xf32>
  %l = linalg.generic {indexing_maps = [#id2, #id2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<8x8xf32>) outs(%e2 : tensor<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = math.log %a : f32
    linalg.yield %v : f32
  } -> tensor<8x8xf32>
  %e3 = tensor.empty() : tensor<8x8x4xf32>
  %r = linalg.generic {indexing_maps = [#bc, #id3],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%l : tensor<8x8xf32>) outs(%e3 : tensor<8x8x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 2.0 : f32
    %v = arith.mulf %a, %c : f32
    linalg.yield %v : f32
  } -> tensor<8x8x4xf32>
  return %r : tensor<8x8x4xf32>
}

// -----

// The same log read once per element (an identity map): fused.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @costly_elementwise
// CHECK: linalg.generic
// CHECK: math.log
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @costly_elementwise(%x: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %e = tensor.empty() : tensor<8x8xf32>
  %l = linalg.generic {indexing_maps = [#id2, #id2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<8x8xf32>) outs(%e : tensor<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = math.log %a : f32
    linalg.yield %v : f32
  } -> tensor<8x8xf32>
  %e2 = tensor.empty() : tensor<8x8xf32>
  %r = linalg.generic {indexing_maps = [#id2, #id2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%l : tensor<8x8xf32>) outs(%e2 : tensor<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 2.0 : f32
    %v = arith.mulf %a, %c : f32
    linalg.yield %v : f32
  } -> tensor<8x8xf32>
  return %r : tensor<8x8xf32>
}

// -----

// A cheap producer (an add) broadcast into a consumer: fused, as upstream
// fuses it; recomputing an add costs less than a pass over memory.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#bc = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @cheap_broadcast
// CHECK: linalg.generic
// CHECK: arith.addf
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @cheap_broadcast(%x: tensor<8x8xf32>) -> tensor<8x8x4xf32> {
  %e2 = tensor.empty() : tensor<8x8xf32>
  %l = linalg.generic {indexing_maps = [#id2, #id2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<8x8xf32>) outs(%e2 : tensor<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = arith.addf %a, %a : f32
    linalg.yield %v : f32
  } -> tensor<8x8xf32>
  %e3 = tensor.empty() : tensor<8x8x4xf32>
  %r = linalg.generic {indexing_maps = [#bc, #id3],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%l : tensor<8x8xf32>) outs(%e3 : tensor<8x8x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 2.0 : f32
    %v = arith.mulf %a, %c : f32
    linalg.yield %v : f32
  } -> tensor<8x8x4xf32>
  return %r : tensor<8x8x4xf32>
}

// -----

// A division broadcast: not fused either.
#id1 = affine_map<(d0) -> (d0)>
#bc = affine_map<(d0, d1) -> (d0)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @division_broadcast
// CHECK: linalg.generic
// CHECK: arith.divsi
// CHECK: linalg.generic
// CHECK-NOT: arith.divsi
// CHECK: return
func.func @division_broadcast(%x: tensor<8xi64>) -> tensor<8x4xi64> {
  %e1 = tensor.empty() : tensor<8xi64>
  %d = linalg.generic {indexing_maps = [#id1, #id1],
                       iterator_types = ["parallel"]}
      ins(%x : tensor<8xi64>) outs(%e1 : tensor<8xi64>) {
  ^bb0(%a: i64, %o: i64):
    %c = arith.constant 3 : i64
    %v = arith.divsi %a, %c : i64
    linalg.yield %v : i64
  } -> tensor<8xi64>
  %e2 = tensor.empty() : tensor<8x4xi64>
  %r = linalg.generic {indexing_maps = [#bc, #id2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%d : tensor<8xi64>) outs(%e2 : tensor<8x4xi64>) {
  ^bb0(%a: i64, %o: i64):
    %v = arith.addi %a, %a : i64
    linalg.yield %v : i64
  } -> tensor<8x4xi64>
  return %r : tensor<8x4xi64>
}

// -----

// An absolute value is cheap: broadcast, it still fuses.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#bc = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @cheap_math_broadcast
// CHECK: linalg.generic
// CHECK: math.absf
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @cheap_math_broadcast(%x: tensor<8x8xf32>) -> tensor<8x8x4xf32> {
  %e2 = tensor.empty() : tensor<8x8xf32>
  %l = linalg.generic {indexing_maps = [#id2, #id2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<8x8xf32>) outs(%e2 : tensor<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %v = math.absf %a : f32
    linalg.yield %v : f32
  } -> tensor<8x8xf32>
  %e3 = tensor.empty() : tensor<8x8x4xf32>
  %r = linalg.generic {indexing_maps = [#bc, #id3],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%l : tensor<8x8xf32>) outs(%e3 : tensor<8x8x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = arith.constant 2.0 : f32
    %v = arith.mulf %a, %c : f32
    linalg.yield %v : f32
  } -> tensor<8x8x4xf32>
  return %r : tensor<8x8x4xf32>
}
