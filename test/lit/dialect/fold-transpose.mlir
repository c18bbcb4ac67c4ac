// RUN: transfuse-opt %s -split-input-file -canonicalize | FileCheck %s

// A transpose of a constant (Gemm's transB=1 weight) folds into the permuted
// constant, so that the product sees a weight it can pack at compile time.
// The resource's bytes: [[1, 2, 3], [4, 5, 6]] transposed is
// [[1, 4], [2, 5], [3, 6]] (f32, little-endian).
// CHECK-LABEL: func @weight
// CHECK: %[[W:.*]] = transformer.constant dense_resource<transposed> : tensor<3x2xf32>
// CHECK-NOT: transformer.transpose
// CHECK: transformer.linear %arg0, %[[W]]
func.func @weight(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %w = transformer.constant dense_resource<w> : tensor<2x3xf32>
  %t = transformer.transpose %w {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %y = transformer.linear %x, %t : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}
// CHECK: transposed: "0x010000000000803F00008040000000400000A040000040400000C040"
{-#
  dialect_resources: {
    builtin: {
      w: "0x040000000000803F0000004000004040000080400000A0400000C040"
    }
  }
#-}

// -----

// Rank 3, a small dense constant: dims (0, 1, 2) -> (2, 0, 1).
// CHECK-LABEL: func @rank3
// CHECK: transformer.constant dense_resource<transposed> : tensor<2x1x2xi32>
// CHECK-NOT: transformer.transpose
func.func @rank3() -> tensor<2x1x2xi32> {
  %c = transformer.constant dense<[[[1, 2], [3, 4]]]> : tensor<1x2x2xi32>
  %t = transformer.transpose %c {perm = array<i64: 2, 0, 1>} : (tensor<1x2x2xi32>) -> tensor<2x1x2xi32>
  return %t : tensor<2x1x2xi32>
}
// [[[1, 2], [3, 4]]] permuted: out[k][0][j] = in[0][j][k] = [[[1, 3]], [[2, 4]]].
// CHECK: transposed: "0x0100000001000000030000000200000004000000"

// -----

// A splat stays a splat.
// CHECK-LABEL: func @splat
// CHECK: transformer.constant dense<2.000000e+00> : tensor<3x2xf32>
func.func @splat() -> tensor<3x2xf32> {
  %c = transformer.constant dense<2.0> : tensor<2x3xf32>
  %t = transformer.transpose %c {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %t : tensor<3x2xf32>
}

// -----

// Negative: a transpose of a computed value stays.
// CHECK-LABEL: func @activation
// CHECK: transformer.transpose %arg0
func.func @activation(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %t = transformer.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %t : tensor<3x2xf32>
}

