// RUN: transfuse-opt %s -pass-pipeline='builtin.module(func.func(transfuse-refine-shapes))' | FileCheck %s

// Types only ever become more static, and the signature follows.
// CHECK-LABEL: func @refine
// CHECK-SAME: -> tensor<4x8xf32>
func.func @refine(%a: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<?x?xf32> {
  // CHECK: transformer.add {{.*}} -> tensor<4x8xf32>
  %0 = transformer.add %a, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<?x?xf32>
  // CHECK: transformer.relu {{.*}} -> tensor<4x8xf32>
  %1 = transformer.relu %0 : (tensor<?x?xf32>) -> tensor<?x?xf32>
  return %1 : tensor<?x?xf32>
}

// Negative: a dynamic input keeps its result dynamic.
// CHECK-LABEL: func @keep_dynamic
// CHECK: transformer.relu {{.*}} -> tensor<?x8xf32>
func.func @keep_dynamic(%a: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = transformer.relu %a : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
