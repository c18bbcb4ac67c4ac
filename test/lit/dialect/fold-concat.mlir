// RUN: transfuse-opt %s -canonicalize | FileCheck %s

// A concat of one input is that input (GPT-2's export concatenates its
// past keys with nothing before the real concatenation).
// CHECK-LABEL: func.func @single
// CHECK-SAME: (%[[P:.*]]: tensor<?x4x?x22xf32>, %[[K:.*]]: tensor<?x4x?x22xf32>)
// CHECK-NOT: transformer.concat %[[P]] {
// CHECK: %[[C:.*]] = transformer.concat %[[P]], %[[K]]
// CHECK: return %[[C]]
func.func @single(%past: tensor<?x4x?x22xf32>, %k: tensor<?x4x?x22xf32>) -> tensor<?x4x?x22xf32> {
  %0 = transformer.concat %past {axis = -2 : i64} : (tensor<?x4x?x22xf32>) -> tensor<?x4x?x22xf32>
  %1 = transformer.concat %0, %k {axis = -2 : i64} : (tensor<?x4x?x22xf32>, tensor<?x4x?x22xf32>) -> tensor<?x4x?x22xf32>
  return %1 : tensor<?x4x?x22xf32>
}

// Negative: one input whose type differs from the result's (a refined
// result type) stays, and so does a concat of two.
// CHECK-LABEL: func.func @kept
// CHECK: transformer.concat %{{.*}} {axis = 0 : i64} : (tensor<?x3xf32>) -> tensor<2x3xf32>
// CHECK: transformer.concat %{{.*}}, %{{.*}} {axis = 0
func.func @kept(%a: tensor<?x3xf32>, %b: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<4x3xf32>) {
  %0 = transformer.concat %a {axis = 0 : i64} : (tensor<?x3xf32>) -> tensor<2x3xf32>
  %1 = transformer.concat %b, %b {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
  return %0, %1 : tensor<2x3xf32>, tensor<4x3xf32>
}
