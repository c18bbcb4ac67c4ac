// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-cpu-copy-to-linalg))' | FileCheck %s

// A ranked copy, strided or not, becomes linalg.copy of the same operands.
// CHECK-LABEL: func.func @ranked
// CHECK-SAME: (%[[A:.*]]: memref<4x?xf32, strided<[?, 1], offset: ?>>, %[[B:.*]]: memref<4x?xf32>, %[[C:.*]]: memref<f32>, %[[D:.*]]: memref<f32>)
// CHECK: linalg.copy ins(%[[A]] : memref<4x?xf32, strided<[?, 1], offset: ?>>) outs(%[[B]] : memref<4x?xf32>)
// CHECK: linalg.copy ins(%[[C]] : memref<f32>) outs(%[[D]] : memref<f32>)
// CHECK-NOT: memref.copy
func.func @ranked(%a: memref<4x?xf32, strided<[?, 1], offset: ?>>, %b: memref<4x?xf32>,
                  %c: memref<f32>, %d: memref<f32>) {
  memref.copy %a, %b : memref<4x?xf32, strided<[?, 1], offset: ?>> to memref<4x?xf32>
  memref.copy %c, %d : memref<f32> to memref<f32>
  return
}

// -----

// An unranked copy has no loops to run: it stays.
// CHECK-LABEL: func.func @unranked
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<*xf32> to memref<*xf32>
// CHECK-NOT: linalg.copy
func.func @unranked(%a: memref<*xf32>, %b: memref<*xf32>) {
  memref.copy %a, %b : memref<*xf32> to memref<*xf32>
  return
}
