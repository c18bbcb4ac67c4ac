// RUN: transfuse-opt %s -transfuse-cpu-matmul-to-microkernel=precision=bf16 | FileCheck %s
// RUN: not transfuse-opt %s -transfuse-cpu-matmul-to-microkernel=precision=fp8 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: transfuse-cpu-matmul-to-microkernel: precision 'fp8' is not f32 or bf16

// With precision=bf16 a constant weight is packed as bf16 into the AMX tile
// layout of runtime/include/transfuse/bf16_panels.h, [ceil(N / 32)][Kp][32]
// with K padded to 32, and the bf16 entry point is called. The bytes
// (little-endian bf16, after the blob's alignment word, 64): the first
// tile row holds the pairs (B[0][0], B[1][0]) = (1, 3) and
// (B[0][1], B[1][1]) = (2, 4), then zeros for columns 2-15; the second row
// starts with (B[2][0], B[3][0]) = (5, 0 padding) and (B[2][1], 0) = (6, 0).
// CHECK-DAG: func.func private @transfuse_matmul_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @transfuse_matmul_f32(
// CHECK: memref.global "private" constant @w_packed_bf16 : memref<1x32x32xbf16> = dense_resource<w_packed_bf16> {alignment = 64 : i64}
// CHECK-NOT: memref.global "private" constant @w :
// CHECK-LABEL: func @constant_weight
// CHECK: %[[P:.*]] = memref.get_global @w_packed_bf16 : memref<1x32x32xbf16>
// CHECK: %[[PC:.*]] = memref.cast %[[P]] : memref<1x32x32xbf16> to memref<?x?x32xbf16>
// CHECK: call @transfuse_matmul_bf16_packed(%{{.*}}, %[[PC]], %{{.*}}, %{{.*}})
memref.global "private" constant @w : memref<3x2xf32> = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]>
func.func @constant_weight(%a: memref<5x3xf32>, %c: memref<5x2xf32>) {
  %w = memref.get_global @w : memref<3x2xf32>
  linalg.matmul ins(%a, %w : memref<5x3xf32>, memref<3x2xf32>) outs(%c : memref<5x2xf32>)
  return
}

// A product by a weight that writes C afresh (C filled with +0 first) and
// has no epilogue is passed as a linear without one: flags 0, an empty
// bias, C as the unread residual (the one entry transfuse-cpu-a-panels
// rewrites).
// CHECK-LABEL: func @fresh_c
// CHECK-NOT: linalg.fill
// CHECK: %[[BIAS:.*]] = memref.alloca() : memref<0xf32>
// CHECK: %[[C:.*]] = memref.cast %arg1 : memref<5x2xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[BC:.*]] = memref.cast %[[BIAS]]
// CHECK: %[[R:.*]] = memref.cast %arg1 : memref<5x2xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[NONE:.*]] = arith.constant 0 : i64
// CHECK: call @transfuse_linear_bf16_packed(%{{.*}}, %{{.*}}, %[[C]], %[[BC]], %[[R]], %[[NONE]])
func.func @fresh_c(%a: memref<5x3xf32>, %c: memref<5x2xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<5x2xf32>)
  %w = memref.get_global @w : memref<3x2xf32>
  linalg.matmul ins(%a, %w : memref<5x3xf32>, memref<3x2xf32>) outs(%c : memref<5x2xf32>)
  return
}

// A B that is not a constant (the generated attention loops' P V) stays an
// f32 product (--bf16-attention is the fused attention kernel's).
// CHECK-LABEL: func @activation_times_activation
// CHECK: call @transfuse_matmul_f32(
// CHECK-NOT: bf16
func.func @activation_times_activation(%a: memref<66x64xf32>, %b: memref<64x96xf32>, %c: memref<66x96xf32>) {
  linalg.matmul ins(%a, %b : memref<66x64xf32>, memref<64x96xf32>) outs(%c : memref<66x96xf32>)
  return
}

// Scores, Q Kᵀ: K through a transposed view, to the same entry.
// CHECK-LABEL: func @scores
// CHECK: %[[KT:.*]] = memref.transpose %{{.*}} (d0, d1) -> (d1, d0)
// CHECK: %[[KC:.*]] = memref.cast %[[KT]]
// CHECK: call @transfuse_matmul_f32(%{{.*}}, %[[KC]], %{{.*}}, %{{.*}})
func.func @scores(%q: memref<128x64xf32>, %k: memref<128x64xf32>, %c: memref<128x128xf32>) {
  linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>] ins(%q, %k : memref<128x64xf32>, memref<128x64xf32>) outs(%c : memref<128x128xf32>)
  return
}

// CHECK: w_packed_bf16: "0x40000000803F4040004080400000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000A0400000C040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000{{0+}}"
