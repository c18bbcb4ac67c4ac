// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-fold-shapes,canonicalize))' | FileCheck %s

// The TorchScript exporter's view chain: Shape -> Gather -> Unsqueeze ->
// Concat -> Reshape. With a static input every value folds and the reshape
// gets a static type.
// CHECK-LABEL: func @static_chain
func.func @static_chain(%x: tensor<2x16x88xf32>) -> tensor<?x?x?x?xf32> {
  %s = transformer.shape %x {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<2x16x88xf32>) -> tensor<3xi64>
  %i0 = transformer.constant dense<0> : tensor<i64>
  %i1 = transformer.constant dense<1> : tensor<i64>
  %b = transformer.gather %s, %i0 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %q = transformer.gather %s, %i1 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %b1 = transformer.unsqueeze %b {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %q1 = transformer.unsqueeze %q {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %h = transformer.constant dense<[4, 22]> : tensor<2xi64>
  %shape = transformer.concat %b1, %q1, %h {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<2xi64>) -> tensor<4xi64>
  // CHECK: %[[C:.*]] = transformer.constant dense<[2, 16, 4, 22]> : tensor<4xi64>
  // CHECK: transformer.reshape %{{.*}}, %[[C]] {{.*}} -> tensor<2x16x4x22xf32>
  // CHECK-NOT: transformer.shape
  %r = transformer.reshape %x, %shape {allowzero = false} : (tensor<2x16x88xf32>, tensor<4xi64>) -> tensor<?x?x?x?xf32>
  return %r : tensor<?x?x?x?xf32>
}

// -----

// Dynamic batch and sequence: the chain stays a run-time computation, but
// the dims it does know (4 heads of 22) refine the reshape's type.
// CHECK-LABEL: func @dynamic_chain
func.func @dynamic_chain(%x: tensor<?x?x88xf32>) -> tensor<?x?x?x?xf32> {
  %s = transformer.shape %x {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x?x88xf32>) -> tensor<3xi64>
  %i0 = transformer.constant dense<0> : tensor<i64>
  %b = transformer.gather %s, %i0 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %b1 = transformer.unsqueeze %b {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %h = transformer.constant dense<[-1, 4, 22]> : tensor<3xi64>
  %shape = transformer.concat %b1, %h {axis = 0 : i64} : (tensor<1xi64>, tensor<3xi64>) -> tensor<4xi64>
  // CHECK: transformer.shape
  // CHECK: transformer.concat
  // CHECK: transformer.reshape {{.*}} -> tensor<?x?x4x22xf32>
  %r = transformer.reshape %x, %shape {allowzero = false} : (tensor<?x?x88xf32>, tensor<4xi64>) -> tensor<?x?x?x?xf32>
  return %r : tensor<?x?x?x?xf32>
}

// -----

// Negative: the static dim of a dynamic tensor folds, the dynamic one not.
// CHECK-LABEL: func @partial
func.func @partial(%x: tensor<?x88xf32>) -> (tensor<i64>, tensor<i64>) {
  %s = transformer.shape %x {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x88xf32>) -> tensor<2xi64>
  %i0 = transformer.constant dense<0> : tensor<i64>
  %i1 = transformer.constant dense<1> : tensor<i64>
  // CHECK-DAG: %[[K:.*]] = transformer.constant dense<88> : tensor<i64>
  // CHECK-DAG: %[[D:.*]] = transformer.gather
  // CHECK: return %[[D]], %[[K]]
  %d = transformer.gather %s, %i0 {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
  %k = transformer.gather %s, %i1 {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
  return %d, %k : tensor<i64>, tensor<i64>
}
