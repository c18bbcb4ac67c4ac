// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg="attention-kernel=true" | FileCheck %s
// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg | FileCheck %s --check-prefix=LOOPS
// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg="attention-kernel=true bf16-attention=true" | FileCheck %s --check-prefix=BF16

// With attention-kernel, an f32 attention becomes one call to the runtime's
// fused kernel: read-only buffers of Q, K, V and each mask (rank 4, any
// strides), a fresh 64-byte aligned result buffer, the mask count, the
// scale, the softcap (0: none) and the flags (bit 0: bf16 products, with
// bf16-attention). A mask of lower rank is reshaped to rank 4 first (ONNX broadcasting:
// [Sq, Sk] here). A missing second mask is passed as Q and not read (count 1).
// Without the option: the generated loops.
// CHECK: func.func private @transfuse_attention_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, {{.*}}, i64, f32, f32, i64) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @padding_mask
// CHECK-DAG: %[[Q:.*]] = bufferization.to_buffer %arg0 read_only
// CHECK-DAG: %[[QC:.*]] = memref.cast %[[Q]]
// CHECK-DAG: %[[K:.*]] = bufferization.to_buffer %arg1 read_only
// CHECK-DAG: %[[KC:.*]] = memref.cast %[[K]] :
// CHECK-DAG: %[[MASK:.*]] = tensor.reshape %arg2
// CHECK-DAG: %[[M:.*]] = bufferization.to_buffer %[[MASK]] read_only
// CHECK-DAG: %[[MC:.*]] = memref.cast %[[M]]
// CHECK-DAG: %[[OUT:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<2x4x?x16xf32>
// CHECK-DAG: %[[OC:.*]] = memref.cast %[[OUT]]
// CHECK-DAG: %[[N:.*]] = arith.constant 1 : i64
// CHECK-DAG: %[[S:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-DAG: %[[C:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[F:.*]] = arith.constant 0 : i64
// CHECK: call @transfuse_attention_f32(%[[QC]], %[[KC]], %{{.*}}, %[[MC]], %[[QC]], %[[OC]], %[[N]], %[[S]], %[[C]], %[[F]])
// CHECK: %[[T:.*]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: return %[[T]]
// CHECK-NOT: scf.for
// BF16-LABEL: func.func @padding_mask
// BF16: %[[ONE:.*]] = arith.constant 1 : i64
// BF16: call @transfuse_attention_f32({{.*}}, %[[ONE]], %{{.*}}, %{{.*}}, %[[ONE]])
// LOOPS-LABEL: func.func @padding_mask
// LOOPS-NOT: call @transfuse_attention_f32
// LOOPS: scf.for
func.func @padding_mask(%q: tensor<2x4x?x16xf32>, %k: tensor<2x4x?x16xf32>, %mask: tensor<2x?xf32>) -> tensor<2x4x?x16xf32> {
  %0 = transformer.attention %q, %k, %k, %mask {scale = 0.25 : f32, algorithm = "materialized"} : (tensor<2x4x?x16xf32>, tensor<2x4x?x16xf32>, tensor<2x4x?x16xf32>, tensor<2x?xf32>) -> tensor<2x4x?x16xf32>
  return %0 : tensor<2x4x?x16xf32>
}

// -----

// Two masks (T5: a position bias and a padding mask), grouped K/V heads:
// both masks are passed, the count is 2.
// CHECK-LABEL: func.func @two_masks
// CHECK-DAG: %[[N:.*]] = arith.constant 2 : i64
// CHECK: call @transfuse_attention_f32(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[N]], %{{.*}}, %{{.*}}, %{{.*}})
func.func @two_masks(%q: tensor<1x8x?x32xf32>, %k: tensor<1x2x?x32xf32>, %bias: tensor<1x8x?x?xf32>, %pad: tensor<1x1x1x?xf32>) -> tensor<1x8x?x32xf32> {
  %0 = transformer.attention %q, %k, %k, %bias, %pad {scale = 1.0 : f32, algorithm = "by_length"} : (tensor<1x8x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x8x?x?xf32>, tensor<1x1x1x?xf32>) -> tensor<1x8x?x32xf32>
  return %0 : tensor<1x8x?x32xf32>
}

// -----

// A relative position bias as `toeplitz` of its [1, H, L] diagonals: the
// kernel reads it through a view of that buffer, row i starting at element
// Sq - 1 - i (offset + (Sq - 1) * stride, row stride -stride); no
// [1, H, Sq, Sk] tensor is built. Without the kernel (LOOPS), the attention
// reads the bias materialized by a linalg.generic.
// CHECK-LABEL: func.func @toeplitz_bias
// CHECK: %[[D:.*]] = bufferization.to_buffer %arg1 read_only
// CHECK: %[[BASE:.*]], %[[OFF:.*]], %[[SIZES:.*]]:3, %[[STRIDES:.*]]:3 = memref.extract_strided_metadata %[[D]]
// CHECK: %[[ROWS:.*]] = arith.index_cast
// CHECK: %[[COLS:.*]] = arith.index_cast
// CHECK: %[[LAST:.*]] = arith.subi %[[ROWS]], %c1
// CHECK: %[[SKIP:.*]] = arith.muli %[[LAST]], %[[STRIDES]]#2
// CHECK: %[[START:.*]] = arith.addi %[[OFF]], %[[SKIP]]
// CHECK: %[[BACK:.*]] = arith.subi %c0, %[[STRIDES]]#2
// CHECK: %[[VIEW:.*]] = memref.reinterpret_cast %[[D]] to offset: [%[[START]]], sizes: [%c1, %c2, %[[ROWS]], %[[COLS]]], strides: [%[[STRIDES]]#0, %[[STRIDES]]#1, %[[BACK]], %[[STRIDES]]#2]
// CHECK: call @transfuse_attention_f32(%{{.*}}, %{{.*}}, %{{.*}}, %[[VIEW]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT: linalg.generic
// LOOPS-LABEL: func.func @toeplitz_bias
// LOOPS: linalg.generic
// LOOPS: arith.subi
// LOOPS: tensor.extract %arg1
func.func @toeplitz_bias(%q: tensor<1x2x?x8xf32>, %diag: tensor<1x2x?xf32>, %sizes: tensor<2xi64>) -> tensor<1x2x?x8xf32> {
  %b = transformer.toeplitz %diag, %sizes : (tensor<1x2x?xf32>, tensor<2xi64>) -> tensor<1x2x?x?xf32>
  %0 = transformer.attention %q, %q, %q, %b {scale = 1.0 : f32, algorithm = "by_length"} : (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x?xf32>) -> tensor<1x2x?x8xf32>
  return %0 : tensor<1x2x?x8xf32>
}

// -----

// Gemma 2's softcap: the kernel gets it after the scale; the loops cap the
// scaled scores, 30 tanh(s / 30), before the mask is added.
// CHECK-LABEL: func.func @softcap
// CHECK-DAG: %[[S:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-DAG: %[[C:.*]] = arith.constant 3.000000e+01 : f32
// CHECK: call @transfuse_attention_f32({{.*}}, %[[S]], %[[C]], %{{.*}})
// LOOPS-LABEL: func.func @softcap
// LOOPS: %[[X:.*]] = arith.mulf %{{.*}}, %cst
// LOOPS: %[[Y:.*]] = arith.mulf %[[X]], %{{.*}}
// LOOPS: %[[T:.*]] = math.tanh %[[Y]]
// LOOPS: %[[Z:.*]] = arith.mulf %[[T]], %{{.*}}
// LOOPS: arith.addf %[[Z]]
func.func @softcap(%q: tensor<1x4x?x16xf32>, %k: tensor<1x2x?x16xf32>, %mask: tensor<1x1x?x?xf32>) -> tensor<1x4x?x16xf32> {
  %0 = transformer.attention %q, %k, %k, %mask {scale = 0.25 : f32, softcap = 30.0 : f32, algorithm = "materialized"} : (tensor<1x4x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x1x?x?xf32>) -> tensor<1x4x?x16xf32>
  return %0 : tensor<1x4x?x16xf32>
}

// -----

// Negative: three masks do not fit the kernel's two; generated loops.
// CHECK-LABEL: func.func @three_masks
// CHECK-NOT: call @transfuse_attention_f32
// CHECK: scf.for
func.func @three_masks(%q: tensor<1x2x8x4xf32>, %m: tensor<1x1x1x8xf32>) -> tensor<1x2x8x4xf32> {
  %0 = transformer.attention %q, %q, %q, %m, %m, %m {scale = 0.5 : f32, algorithm = "materialized"} : (tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x1x1x8xf32>, tensor<1x1x1x8xf32>, tensor<1x1x1x8xf32>) -> tensor<1x2x8x4xf32>
  return %0 : tensor<1x2x8x4xf32>
}

// -----

// Negative: the kernel is f32 only; an f16 attention gets the loops.
// CHECK-LABEL: func.func @half
// CHECK-NOT: call @transfuse_attention_f32
// CHECK: scf.for
func.func @half(%q: tensor<1x2x8x4xf16>) -> tensor<1x2x8x4xf16> {
  %0 = transformer.attention %q, %q, %q {scale = 0.5 : f32, algorithm = "materialized"} : (tensor<1x2x8x4xf16>, tensor<1x2x8x4xf16>, tensor<1x2x8x4xf16>) -> tensor<1x2x8x4xf16>
  return %0 : tensor<1x2x8x4xf16>
}
