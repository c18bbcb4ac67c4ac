// RUN: transfuse-opt %s -transfuse-cpu-matmul-to-microkernel | FileCheck %s

// An f32 matmul on buffers becomes a call to the runtime's GEMM on fully
// dynamic strided views, accumulating into C (C += A * B: accumulate = 1);
// the declarations ask for the C interface.
// CHECK: func.func private @transfuse_matmul_f32_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
// CHECK: func.func private @transfuse_matmul_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func @f32
// CHECK: %[[ACC:.*]] = arith.constant 1 : i64
// CHECK: %[[A:.*]] = memref.cast %arg0 : memref<66x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[B:.*]] = memref.cast %arg1
// CHECK: %[[C:.*]] = memref.cast %arg2
// CHECK: call @transfuse_matmul_f32(%[[A]], %[[B]], %[[C]], %[[ACC]])
// CHECK-NOT: linalg.matmul
func.func @f32(%a: memref<66x64xf32>, %b: memref<64x96xf32>, %c: memref<66x96xf32>) {
  linalg.matmul ins(%a, %b : memref<66x64xf32>, memref<64x96xf32>) outs(%c : memref<66x96xf32>)
  return
}

// A constant weight is packed at compile time into the kernel's panel layout
// [ceil(N / 32)][K][32] (40 columns: 2 panels, the second zero padded), the
// packed entry point is called, and the unpacked weight is dropped.
// CHECK: memref.global "private" constant @w_packed : memref<2x3x32xf32> = dense_resource<w_packed> {alignment = 64 : i64}
// CHECK-NOT: memref.global "private" constant @w :
// CHECK-LABEL: func @constant_weight
// CHECK: %[[P:.*]] = memref.get_global @w_packed : memref<2x3x32xf32>
// CHECK: %[[PC:.*]] = memref.cast %[[P]] : memref<2x3x32xf32> to memref<?x?x32xf32>
// CHECK: call @transfuse_matmul_f32_packed(%{{.*}}, %[[PC]], %{{.*}}, %{{.*}})
memref.global "private" constant @w : memref<3x40xf32> = dense<1.0>
func.func @constant_weight(%a: memref<5x3xf32>, %c: memref<5x40xf32>) {
  %w = memref.get_global @w : memref<3x40xf32>
  linalg.matmul ins(%a, %w : memref<5x3xf32>, memref<3x40xf32>) outs(%c : memref<5x40xf32>)
  return
}

// C filled with +0 right before the product, as a `linear` starts: the fill
// is dropped and the kernel writes C (accumulate = 0).
// CHECK-LABEL: func @zero_filled
// CHECK-NOT: linalg.fill
// CHECK: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK-NOT: linalg.fill
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %{{.*}}, %{{.*}}, %[[ZERO]])
func.func @zero_filled(%a: memref<4x8xf32>, %b: memref<8x16xf32>, %c: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  return
}

// Negative: a fill of another value, of another buffer, or with C read in
// between stays, and the product accumulates.
// CHECK-LABEL: func @fills_that_stay
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%arg2
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c1_i64{{.*}}) :
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%arg3
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c1_i64{{.*}}) :
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%arg2
// CHECK: memref.copy
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c1_i64{{.*}}) :
func.func @fills_that_stay(%a: memref<4x8xf32>, %b: memref<8x16xf32>, %c: memref<4x16xf32>, %d: memref<4x16xf32>) {
  %one = arith.constant 1.0 : f32
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%one : f32) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  linalg.fill ins(%zero : f32) outs(%d : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  linalg.fill ins(%zero : f32) outs(%c : memref<4x16xf32>)
  memref.copy %c, %d : memref<4x16xf32> to memref<4x16xf32>
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  return
}

// Negative: other element types and tensors keep the loop lowering.
// CHECK-LABEL: func @f64
// CHECK: linalg.matmul
func.func @f64(%a: memref<4x4xf64>, %b: memref<4x4xf64>, %c: memref<4x4xf64>) {
  linalg.matmul ins(%a, %b : memref<4x4xf64>, memref<4x4xf64>) outs(%c : memref<4x4xf64>)
  return
}

// CHECK-LABEL: func @tensors
// CHECK: linalg.matmul
func.func @tensors(%a: tensor<4x4xf32>, %b: tensor<4x4xf32>, %c: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %0 = linalg.matmul ins(%a, %b : tensor<4x4xf32>, tensor<4x4xf32>) outs(%c : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}
