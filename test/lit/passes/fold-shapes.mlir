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

// -----

// Hugging Face's mask expansion: Expand(mask, Where(Equal(s, -1 * ones),
// ones, s)), ones = ConstantOfShape. With `s` known, the target folds and
// the expand (and what follows it) gets a static type.
// CHECK-LABEL: func @expand_target
func.func @expand_target(%m: tensor<1x1x16x16xi1>) -> tensor<?x?x16x16xi1> {
  %s = transformer.constant dense<[1, -1, 16, 16]> : tensor<4xi64>
  %four = transformer.constant dense<4> : tensor<1xi64>
  %neg = transformer.constant dense<-1> : tensor<i64>
  %ones = transformer.constant_of_shape %four {value = 1 : i64} : (tensor<1xi64>) -> tensor<4xi64>
  %negs = transformer.mul %ones, %neg : (tensor<4xi64>, tensor<i64>) -> tensor<4xi64>
  %eq = transformer.equal %s, %negs : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  %t = transformer.where %eq, %ones, %s : (tensor<4xi1>, tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  // CHECK: %[[T:.*]] = transformer.constant dense<[1, 1, 16, 16]> : tensor<4xi64>
  // CHECK: transformer.expand %{{.*}}, %[[T]] : {{.*}} -> tensor<1x1x16x16xi1>
  // CHECK-NOT: transformer.where
  %e = transformer.expand %m, %t : (tensor<1x1x16x16xi1>, tensor<4xi64>) -> tensor<?x?x16x16xi1>
  return %e : tensor<?x?x16x16xi1>
}

// -----

// Negative: with a run-time entry in `s` the comparison and the select stay;
// the entries they do know still refine the expand's type.
// CHECK-LABEL: func @expand_target_dynamic
func.func @expand_target_dynamic(%m: tensor<1x1x16x16xi1>, %x: tensor<?x16xf32>) -> tensor<?x?x?x?xi1> {
  %d = transformer.shape %x {end = 1 : i64, start = 0 : i64} : (tensor<?x16xf32>) -> tensor<1xi64>
  %rest = transformer.constant dense<[1, 16, 16]> : tensor<3xi64>
  %s = transformer.concat %d, %rest {axis = 0 : i64} : (tensor<1xi64>, tensor<3xi64>) -> tensor<4xi64>
  %four = transformer.constant dense<4> : tensor<1xi64>
  %neg = transformer.constant dense<-1> : tensor<i64>
  %ones = transformer.constant_of_shape %four {value = 1 : i64} : (tensor<1xi64>) -> tensor<4xi64>
  %negs = transformer.mul %ones, %neg : (tensor<4xi64>, tensor<i64>) -> tensor<4xi64>
  %eq = transformer.equal %s, %negs : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  %t = transformer.where %eq, %ones, %s : (tensor<4xi1>, tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
  // CHECK: transformer.equal
  // CHECK: transformer.where
  // CHECK: transformer.expand {{.*}} -> tensor<?x1x16x16xi1>
  %e = transformer.expand %m, %t : (tensor<1x1x16x16xi1>, tensor<4xi64>) -> tensor<?x?x?x?xi1>
  return %e : tensor<?x?x?x?xi1>
}
