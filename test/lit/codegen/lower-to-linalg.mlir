// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg | FileCheck %s

// Static broadcasting uses indexing maps, no run-time check.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[ROW:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func @add_bias
// CHECK-NOT: scf.if
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ID]]]
// CHECK: arith.addf
func.func @add_bias(%a: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %0 = transformer.add %a, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// Two dynamic dims: equal sizes take the fast path, a run-time 1 the
// broadcasting one.
// CHECK-LABEL: func @add_dynamic
// CHECK: arith.cmpi eq
// CHECK: scf.if
// CHECK: linalg.generic
// CHECK: } else {
// CHECK: tensor.extract
func.func @add_dynamic(%a: tensor<?x8xf32>, %b: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = transformer.add %a, %b : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// An f32 product by a matrix: one 2-D linalg.matmul on the rows (the form
// the runtime GEMM takes), reshaped back.
// CHECK-LABEL: func @matmul
// CHECK: linalg.fill
// CHECK: linalg.matmul ins({{.*}} : tensor<8x8xf32>, tensor<8x3xf32>) outs({{.*}} : tensor<8x3xf32>)
// CHECK: tensor.reshape {{.*}} -> tensor<2x4x3xf32>
func.func @matmul(%a: tensor<2x4x8xf32>, %b: tensor<8x3xf32>) -> tensor<2x4x3xf32> {
  %0 = transformer.matmul %a, %b : (tensor<2x4x8xf32>, tensor<8x3xf32>) -> tensor<2x4x3xf32>
  return %0 : tensor<2x4x3xf32>
}

// -----

// A batched product: a contraction generic with `n` innermost.
// CHECK-LABEL: func @batched_matmul
// CHECK: linalg.fill
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction", "parallel"]
// CHECK: arith.mulf
// CHECK: arith.addf
func.func @batched_matmul(%a: tensor<4x8xf32>, %b: tensor<2x8x3xf32>) -> tensor<2x4x3xf32> {
  %0 = transformer.matmul %a, %b : (tensor<4x8xf32>, tensor<2x8x3xf32>) -> tensor<2x4x3xf32>
  return %0 : tensor<2x4x3xf32>
}

// -----

// Gather clamps indices so that an id out of range cannot read out of bounds.
// CHECK-LABEL: func @gather
// CHECK: linalg.generic
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: tensor.extract
func.func @gather(%w: tensor<10x4xf32>, %i: tensor<?xi64>) -> tensor<?x4xf32> {
  %0 = transformer.gather %w, %i {axis = 0 : i64} : (tensor<10x4xf32>, tensor<?xi64>) -> tensor<?x4xf32>
  return %0 : tensor<?x4xf32>
}

// -----

// A float reduction over a static last dim (here softmax's row max and
// row sum over 64, and a LayerNorm row of 768): first into partial results
// per row, the largest of 128, 64, 32, 16 lanes that divides the row at
// least twice (32 for 64, 128 for 768), with the lanes innermost, then over
// the lanes.
// CHECK-DAG: #[[SPLIT_IN:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[SPLIT_OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func @row_reductions_split
// CHECK: %[[X:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1, 2]] output_shape [%{{.*}}, 2, 32] : tensor<?x64xf32> into tensor<?x2x32xf32>
// CHECK: %[[P:.*]] = linalg.generic {indexing_maps = [#[[SPLIT_IN]], #[[SPLIT_OUT]]], iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[X]] : tensor<?x2x32xf32>) outs(%{{.*}} : tensor<?x32xf32>)
// CHECK: arith.maximumf
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<?x32xf32>) outs(%{{.*}} : tensor<?xf32>)
// CHECK: tensor.expand_shape {{.*}} into tensor<?x2x32xf32>
// CHECK: iterator_types = ["parallel", "reduction", "parallel"]
// CHECK: arith.addf
// CHECK: tensor.expand_shape %arg1 {{\[}}[0], [1, 2]] output_shape [%{{.*}}, 6, 128] : tensor<?x768xf32> into tensor<?x6x128xf32>
func.func @row_reductions_split(%x: tensor<?x64xf32>, %y: tensor<?x768xf32>, %s: tensor<768xf32>) -> (tensor<?x64xf32>, tensor<?x768xf32>) {
  %0 = transformer.softmax %x {axis = -1 : i64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %1 = transformer.layer_norm %y scale %s bias %s {epsilon = 1.0e-5 : f32} : (tensor<?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<?x768xf32>
  return %0, %1 : tensor<?x64xf32>, tensor<?x768xf32>
}

// -----

// Negative: a last dim with none of those lane counts (40 is not a
// multiple of 16), or a dynamic one, is reduced in one generic.
// CHECK-LABEL: func @row_reductions_whole
// CHECK-NOT: tensor.expand_shape
// CHECK: iterator_types = ["parallel", "reduction"]} ins(%arg0 : tensor<?x40xf32>)
// CHECK-NOT: tensor.expand_shape
// CHECK: iterator_types = ["parallel", "reduction"]} ins(%arg1 : tensor<4x?xf32>)
// CHECK-NOT: tensor.expand_shape
func.func @row_reductions_whole(%x: tensor<?x40xf32>, %y: tensor<4x?xf32>) -> (tensor<?x40xf32>, tensor<4x?xf32>) {
  %0 = transformer.softmax %x {axis = -1 : i64} : (tensor<?x40xf32>) -> tensor<?x40xf32>
  %1 = transformer.softmax %y {axis = -1 : i64} : (tensor<4x?xf32>) -> tensor<4x?xf32>
  return %0, %1 : tensor<?x40xf32>, tensor<4x?xf32>
}
