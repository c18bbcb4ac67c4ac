// RUN: transfuse-opt %s -transfuse-cpu-matmul-to-microkernel | FileCheck %s

// An f32 matmul on buffers becomes a call to the runtime's GEMM (C += A * B)
// on fully dynamic strided views; the declarations ask for the C interface.
// CHECK: func.func private @transfuse_matmul_f32_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK: func.func private @transfuse_matmul_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func @f32
// CHECK: %[[A:.*]] = memref.cast %arg0 : memref<66x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[B:.*]] = memref.cast %arg1
// CHECK: %[[C:.*]] = memref.cast %arg2
// CHECK: call @transfuse_matmul_f32(%[[A]], %[[B]], %[[C]])
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
// CHECK: call @transfuse_matmul_f32_packed(%{{.*}}, %[[PC]], %{{.*}})
memref.global "private" constant @w : memref<3x40xf32> = dense<1.0>
func.func @constant_weight(%a: memref<5x3xf32>, %c: memref<5x40xf32>) {
  %w = memref.get_global @w : memref<3x40xf32>
  linalg.matmul ins(%a, %w : memref<5x3xf32>, memref<3x40xf32>) outs(%c : memref<5x40xf32>)
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
