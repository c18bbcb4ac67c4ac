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

// Views of the operands between the fill and the product (a head's scores:
// its C slice zeroed, then Q's and K's slices taken) touch no memory: the
// fill still goes.
// CHECK-LABEL: func @fill_then_views
// CHECK-NOT: linalg.fill
// CHECK: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %{{.*}}, %{{.*}}, %[[ZERO]])
func.func @fill_then_views(%a: memref<2x4x8xf32>, %b: memref<8x16xf32>, %c: memref<2x4x16xf32>, %i: index) {
  %zero = arith.constant 0.0 : f32
  %cs = memref.subview %c[%i, 0, 0] [1, 4, 16] [1, 1, 1] : memref<2x4x16xf32> to memref<4x16xf32, strided<[16, 1], offset: ?>>
  linalg.fill ins(%zero : f32) outs(%cs : memref<4x16xf32, strided<[16, 1], offset: ?>>)
  %as = memref.subview %a[%i, 0, 0] [1, 4, 8] [1, 1, 1] : memref<2x4x8xf32> to memref<4x8xf32, strided<[8, 1], offset: ?>>
  linalg.matmul ins(%as, %b : memref<4x8xf32, strided<[8, 1], offset: ?>>, memref<8x16xf32>) outs(%cs : memref<4x16xf32, strided<[16, 1], offset: ?>>)
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

// B transposed (attention's Q K^T, K as [N, K]): the kernel gets a
// memref.transpose view of K, strides swapped, and no copy is made.
// CHECK-LABEL: func @transposed_b
// CHECK-NOT: linalg.transpose
// CHECK: %[[KT:.*]] = memref.transpose %arg1 (d0, d1) -> (d1, d0) : memref<40x16xf32> to memref<16x40xf32, strided<[1, 16]>>
// CHECK: %[[KTC:.*]] = memref.cast %[[KT]] : memref<16x40xf32, strided<[1, 16]>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %[[KTC]], %{{.*}}, %{{.*}})
// CHECK-NOT: linalg.matmul
func.func @transposed_b(%q: memref<1x16xf32>, %k: memref<40x16xf32>, %s: memref<1x40xf32>) {
  linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%q, %k : memref<1x16xf32>, memref<40x16xf32>) outs(%s : memref<1x40xf32>)
  return
}

// A transposed constant is read through the view too; it is not packed.
// CHECK-LABEL: func @transposed_constant
// CHECK: %[[W:.*]] = memref.get_global @wt : memref<40x3xf32>
// CHECK: memref.transpose %[[W]]
// CHECK: call @transfuse_matmul_f32(
memref.global "private" constant @wt : memref<40x3xf32> = dense<1.0>
func.func @transposed_constant(%a: memref<5x3xf32>, %c: memref<5x40xf32>) {
  %w = memref.get_global @wt : memref<40x3xf32>
  linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%a, %w : memref<5x3xf32>, memref<40x3xf32>) outs(%c : memref<5x40xf32>)
  return
}

// Negative: other indexing maps (A transposed) keep the loop lowering.
// CHECK-LABEL: func @transposed_a
// CHECK: linalg.matmul
// CHECK-NOT: call @transfuse_matmul_f32
func.func @transposed_a(%a: memref<16x4xf32>, %b: memref<16x8xf32>, %c: memref<4x8xf32>) {
  linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%a, %b : memref<16x4xf32>, memref<16x8xf32>) outs(%c : memref<4x8xf32>)
  return
}
