// RUN: transfuse-opt %s -pass-pipeline='builtin.module(func.func(transfuse-fold-shapes,canonicalize))' | FileCheck %s

// The dynamo exporter slices shape vectors from INT64_MIN ("from the start");
// that constant must not be mistaken for an unknown value.
// CHECK-LABEL: func @slice_from_int64_min
// CHECK: %[[C:.*]] = transformer.constant dense<[2, 16]> : tensor<2xi64>
// CHECK: return %[[C]]
func.func @slice_from_int64_min(%x: tensor<2x16x88xf32>) -> tensor<?xi64> {
  %s = transformer.shape %x {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<2x16x88xf32>) -> tensor<3xi64>
  %lo = transformer.constant dense<-9223372036854775808> : tensor<1xi64>
  %hi = transformer.constant dense<-1> : tensor<1xi64>
  %r = transformer.slice %s, %lo, %hi {axes = array<i64: 0>, steps = array<i64: 1>} : (tensor<3xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<?xi64>
  return %r : tensor<?xi64>
}
