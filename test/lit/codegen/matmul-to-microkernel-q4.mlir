// RUN: transfuse-opt %s -transfuse-cpu-matmul-to-microkernel | FileCheck %s
// RUN: transfuse-opt %s '-transfuse-cpu-matmul-to-microkernel=int4=false' | FileCheck %s --check-prefix=F32
// RUN: transfuse-opt %s '-transfuse-cpu-matmul-to-microkernel=precision=bf16' | FileCheck %s --check-prefix=BF16

// A constant weight whose every column is, in each block of 32 rows, a
// 4-bit code times a scale less a zero point (as the importer dequantizes
// MatMulNBits' weights) is kept in 4 bits (q4_panels.h: codes of 16 bytes
// a K step and panel, then 32 scales and 16 bytes of zero points a block and
// panel), and its product is transfuse_linear_q4(A, codes, params, out,
// bias, residual, flags, accumulate). The f32 weight is dropped.
// CHECK-DAG: memref.global "private" constant @codes_q4codes : memref<512xi8> = dense_resource<codes_q4codes> {alignment = 64 : i64}
// CHECK-DAG: memref.global "private" constant @codes_q4params : memref<36xf32> = dense_resource<codes_q4params> {alignment = 64 : i64}
// CHECK-DAG: memref.global "private" constant @splat_q4codes : memref<2048xi8>
// CHECK-DAG: memref.global "private" constant @sines_packed : memref<1x32x32xf32>
// CHECK-DAG: func.func private @transfuse_linear_q4(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xi8>, memref<?xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64, i64) attributes {llvm.emit_c_interface}
// CHECK-NOT: memref.global "private" constant @codes :
// CHECK-NOT: memref.global "private" constant @splat :
// CHECK-NOT: @codes_packed
// F32-NOT: q4
// F32: memref.global "private" constant @codes_packed : memref<1x32x32xf32>
// BF16-NOT: q4
// BF16: memref.global "private" constant @codes_packed_bf16

memref.global "private" constant @codes : memref<32x1xf32> = dense<[[0.0], [2.625], [-0.75], [1.875], [4.5], [1.125], [3.75], [0.375], [3.0], [-0.375], [2.25], [-1.125], [1.5], [4.125], [0.75], [3.375], [0.0], [2.625], [-0.75], [1.875], [4.5], [1.125], [3.75], [0.375], [3.0], [-0.375], [2.25], [-1.125], [1.5], [4.125], [0.75], [3.375]]>
memref.global "private" constant @splat : memref<40x40xf32> = dense<0.5>
memref.global "private" constant @sines : memref<32x1xf32> = dense<[[0.841471], [0.979908], [0.985719], [0.858118], [0.614374], [0.287478], [-0.078327], [-0.433531], [-0.730058], [-0.927776], [-0.999923], [-0.936736], [-0.746765], [-0.455724], [-0.103002], [0.263660], [0.594637], [0.845133], [0.981244], [0.984549], [0.854599], [0.608983], [0.280944], [-0.085119], [-0.439662], [-0.734698], [-0.930297], [-0.999984], [-0.934329], [-0.742216], [-0.449647], [-0.096222]]>

// Accumulating into C: flags 0, accumulate 1, an empty bias and C as the
// residual (neither read).
// CHECK-LABEL: func @accumulate
// CHECK: %[[CODES:.*]] = memref.get_global @codes_q4codes : memref<512xi8>
// CHECK: %[[PARAMS:.*]] = memref.get_global @codes_q4params : memref<36xf32>
// CHECK: %[[C:.*]] = memref.cast %[[CODES]] : memref<512xi8> to memref<?xi8>
// CHECK: %[[P:.*]] = memref.cast %[[PARAMS]] : memref<36xf32> to memref<?xf32>
// CHECK: call @transfuse_linear_q4(%{{.*}}, %[[C]], %[[P]], %{{.*}}, %{{.*}}, %{{.*}}, %c0_i64, %c1_i64)
// CHECK-NOT: linalg.matmul
// F32-LABEL: func @accumulate
// F32: call @transfuse_matmul_f32_packed
func.func @accumulate(%a: memref<5x32xf32>, %c: memref<5x1xf32>) {
  %w = memref.get_global @codes : memref<32x1xf32>
  linalg.matmul ins(%a, %w : memref<5x32xf32>, memref<32x1xf32>) outs(%c : memref<5x1xf32>)
  return
}

// A linear with a bias: the epilogue goes into the call (flags 256) and
// the product writes C afresh (accumulate 0). K = 40: a second block of 8
// rows, zero padded.
// CHECK-LABEL: func @linear_bias
// CHECK: memref.get_global @splat_q4codes : memref<2048xi8>
// CHECK: call @transfuse_linear_q4({{.*}}, %c256_i64, %c0_i64)
// CHECK-NOT: linalg.generic
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#last2 = affine_map<(d0, d1) -> (d1)>
memref.global "private" constant @bias40 : memref<40xf32> = dense<2.0>
func.func @linear_bias(%a: memref<6x40xf32>) -> memref<6x40xf32> {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @splat : memref<40x40xf32>
  %b = memref.get_global @bias40 : memref<40xf32>
  %c = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x40xf32>, memref<40x40xf32>) outs(%c : memref<6x40xf32>)
  %out = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #last2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c, %b : memref<6x40xf32>, memref<40xf32>) outs(%out : memref<6x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    linalg.yield %y : f32
  }
  return %out : memref<6x40xf32>
}

// Negative: values that are no 4-bit code times a scale stay f32 panels.
// CHECK-LABEL: func @not_4bit
// CHECK: call @transfuse_matmul_f32_packed
func.func @not_4bit(%a: memref<5x32xf32>, %c: memref<5x1xf32>) {
  %w = memref.get_global @sines : memref<32x1xf32>
  linalg.matmul ins(%a, %w : memref<5x32xf32>, memref<32x1xf32>) outs(%c : memref<5x1xf32>)
  return
}
