// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-cpu-split-empty-tensors))' | FileCheck %s

// An empty tensor (and a zero-filled one) shared by two products, as CSE
// leaves them across layers, becomes one per use, made just before it.
// CHECK-LABEL: func.func @shared
// CHECK-NOT: tensor.empty
// CHECK: %[[E1:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[F1:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E1]] : tensor<4x8xf32>)
// CHECK: %[[M1:.*]] = linalg.matmul ins(%arg0, %arg1 : {{.*}}) outs(%[[F1]] : tensor<4x8xf32>)
// CHECK: %[[E2:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[F2:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E2]] : tensor<4x8xf32>)
// CHECK: %[[M2:.*]] = linalg.matmul ins(%arg0, %arg1 : {{.*}}) outs(%[[F2]] : tensor<4x8xf32>)
// CHECK: %[[E3:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: linalg.add ins(%[[M1]], %[[M2]] : {{.*}}) outs(%[[E3]] : tensor<4x8xf32>)
// CHECK: %[[E4:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: linalg.sub ins(%[[M1]], %[[M2]] : {{.*}}) outs(%[[E4]] : tensor<4x8xf32>)
func.func @shared(%a: tensor<4x16xf32>, %b: tensor<16x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %m1 = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %m2 = linalg.matmul ins(%a, %b : tensor<4x16xf32>, tensor<16x8xf32>) outs(%z : tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = linalg.add ins(%m1, %m2 : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %d = linalg.sub ins(%m1, %m2 : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %s, %d : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Negative: an empty tensor with one use stays where it is, and a fill of
// something other than an empty tensor is shared as it was.
// CHECK-LABEL: func.func @single_use
// CHECK: %[[E:.*]] = tensor.empty() : tensor<4xf32>
// CHECK-NEXT: %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%arg0 : tensor<4xf32>)
// CHECK-NEXT: linalg.add ins(%[[F]], %[[F]] : {{.*}}) outs(%[[E]] : tensor<4xf32>)
// CHECK-NOT: linalg.fill
func.func @single_use(%t: tensor<4xf32>) -> tensor<4xf32> {
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %f = linalg.fill ins(%one : f32) outs(%t : tensor<4xf32>) -> tensor<4xf32>
  %s = linalg.add ins(%f, %f : tensor<4xf32>, tensor<4xf32>) outs(%e : tensor<4xf32>) -> tensor<4xf32>
  return %s : tensor<4xf32>
}
