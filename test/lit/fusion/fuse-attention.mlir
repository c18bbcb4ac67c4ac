// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-fuse-attention{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// BERT as the SDPA exporters write it: Q and K^T each scaled by d^-1/4, a
// padding mask added, NaN rows zeroed, then p x V. The K^T transpose
// [0,2,3,1] of [B,S,H,D] folds into one [0,2,1,3] of the key.
// CHECK-LABEL: func @bert_sdpa
// CHECK: %[[K:.*]] = transformer.transpose %arg1 {perm = array<i64: 0, 2, 1, 3>}
// CHECK-NEXT: %[[A:.*]] = transformer.attention %arg0, %[[K]], %arg2, %arg3 {scale = 0.353553{{[0-9]*}} : f32}
// CHECK-NEXT: return %[[A]]
func.func @bert_sdpa(%q: tensor<?x2x?x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x2x?x8xf32>, %mask: tensor<?x1x1x?xf32>) -> tensor<?x2x?x8xf32> {
  %c = transformer.constant dense<0.594603539> : tensor<f32>
  %zero = transformer.constant dense<0.0> : tensor<1xf32>
  %kt = transformer.transpose %k {perm = array<i64: 0, 2, 3, 1>} : (tensor<?x?x2x8xf32>) -> tensor<?x2x8x?xf32>
  %qs = transformer.mul %q, %c : (tensor<?x2x?x8xf32>, tensor<f32>) -> tensor<?x2x?x8xf32>
  %ks = transformer.mul %kt, %c : (tensor<?x2x8x?xf32>, tensor<f32>) -> tensor<?x2x8x?xf32>
  %s = transformer.matmul %qs, %ks : (tensor<?x2x?x8xf32>, tensor<?x2x8x?xf32>) -> tensor<?x2x?x?xf32>
  %sm = transformer.add %s, %mask : (tensor<?x2x?x?xf32>, tensor<?x1x1x?xf32>) -> tensor<?x2x?x?xf32>
  %p = transformer.softmax %sm {axis = -1 : i64} : (tensor<?x2x?x?xf32>) -> tensor<?x2x?x?xf32>
  %nan = transformer.is_nan %p : (tensor<?x2x?x?xf32>) -> tensor<?x2x?x?xi1>
  %p0 = transformer.where %nan, %zero, %p : (tensor<?x2x?x?xi1>, tensor<1xf32>, tensor<?x2x?x?xf32>) -> tensor<?x2x?x?xf32>
  %o = transformer.matmul %p0, %v : (tensor<?x2x?x?xf32>, tensor<?x2x?x8xf32>) -> tensor<?x2x?x8xf32>
  return %o : tensor<?x2x?x8xf32>
}

// -----

// The eager GPT-2 form: (Q K^T) / sqrt(d), plus a causal mask; K^T given
// directly, so the key is its transpose.
// CHECK-LABEL: func @gpt2_eager
// CHECK: %[[K:.*]] = transformer.transpose %arg1 {perm = array<i64: 0, 1, 3, 2>}
// CHECK-NEXT: transformer.attention %arg0, %[[K]], %arg2, %arg3 {scale = 2.500000e-01 : f32}
func.func @gpt2_eager(%q: tensor<1x4x5x16xf32>, %kt: tensor<1x4x16x5xf32>, %v: tensor<1x4x5x16xf32>, %causal: tensor<1x1x5x5xf32>) -> tensor<1x4x5x16xf32> {
  %c = transformer.constant dense<4.0> : tensor<f32>
  %s = transformer.matmul %q, %kt : (tensor<1x4x5x16xf32>, tensor<1x4x16x5xf32>) -> tensor<1x4x5x5xf32>
  %d = transformer.div %s, %c : (tensor<1x4x5x5xf32>, tensor<f32>) -> tensor<1x4x5x5xf32>
  %sm = transformer.add %d, %causal : (tensor<1x4x5x5xf32>, tensor<1x1x5x5xf32>) -> tensor<1x4x5x5xf32>
  %p = transformer.softmax %sm {axis = 3 : i64} : (tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %o = transformer.matmul %p, %v : (tensor<1x4x5x5xf32>, tensor<1x4x5x16xf32>) -> tensor<1x4x5x16xf32>
  return %o : tensor<1x4x5x16xf32>
}

// -----

// T5: no scale, a relative-position bias and a mask as two added terms,
// kept as two masks (never summed into a [B, H, Sq, Sk] buffer).
// CHECK-LABEL: func @t5_bias_and_mask
// CHECK-NOT: transformer.add
// CHECK: transformer.attention %arg0, %{{.*}}, %arg2, %arg3, %arg4 {scale = 1.000000e+00 : f32}
func.func @t5_bias_and_mask(%q: tensor<?x4x?x16xf32>, %kt: tensor<?x4x16x?xf32>, %v: tensor<?x4x?x16xf32>, %bias: tensor<1x4x?x?xf32>, %mask: tensor<?x1x1x?xf32>) -> tensor<?x4x?x16xf32> {
  %s = transformer.matmul %q, %kt : (tensor<?x4x?x16xf32>, tensor<?x4x16x?xf32>) -> tensor<?x4x?x?xf32>
  %a = transformer.add %s, %bias : (tensor<?x4x?x?xf32>, tensor<1x4x?x?xf32>) -> tensor<?x4x?x?xf32>
  %sm = transformer.add %a, %mask : (tensor<?x4x?x?xf32>, tensor<?x1x1x?xf32>) -> tensor<?x4x?x?xf32>
  %p = transformer.softmax %sm {axis = -1 : i64} : (tensor<?x4x?x?xf32>) -> tensor<?x4x?x?xf32>
  %o = transformer.matmul %p, %v : (tensor<?x4x?x?xf32>, tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32>
  return %o : tensor<?x4x?x16xf32>
}

// -----

// Grouped-query attention: HF's repeat_kv (Unsqueeze, Expand, Reshape) is
// peeled off, so the op reads 2 K/V heads for 6 query heads.
// CHECK-LABEL: func @gqa_repeat_kv
// CHECK: transformer.attention %arg0, %arg1, %arg2 {{.*}} : (tensor<?x6x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) -> tensor<?x6x?x16xf32>
func.func @gqa_repeat_kv(%q: tensor<?x6x?x16xf32>, %k: tensor<?x2x?x16xf32>, %v: tensor<?x2x?x16xf32>, %e: tensor<5xi64>, %r: tensor<4xi64>) -> tensor<?x6x?x16xf32> {
  %ku = transformer.unsqueeze %k {axes = array<i64: 2>} : (tensor<?x2x?x16xf32>) -> tensor<?x2x1x?x16xf32>
  %ke = transformer.expand %ku, %e : (tensor<?x2x1x?x16xf32>, tensor<5xi64>) -> tensor<?x2x3x?x16xf32>
  %kr = transformer.reshape %ke, %r {allowzero = false} : (tensor<?x2x3x?x16xf32>, tensor<4xi64>) -> tensor<?x6x?x16xf32>
  %vu = transformer.unsqueeze %v {axes = array<i64: 2>} : (tensor<?x2x?x16xf32>) -> tensor<?x2x1x?x16xf32>
  %ve = transformer.expand %vu, %e : (tensor<?x2x1x?x16xf32>, tensor<5xi64>) -> tensor<?x2x3x?x16xf32>
  %vr = transformer.reshape %ve, %r {allowzero = false} : (tensor<?x2x3x?x16xf32>, tensor<4xi64>) -> tensor<?x6x?x16xf32>
  %kt = transformer.transpose %kr {perm = array<i64: 0, 1, 3, 2>} : (tensor<?x6x?x16xf32>) -> tensor<?x6x16x?xf32>
  %s = transformer.matmul %q, %kt : (tensor<?x6x?x16xf32>, tensor<?x6x16x?xf32>) -> tensor<?x6x?x?xf32>
  %p = transformer.softmax %s {axis = -1 : i64} : (tensor<?x6x?x?xf32>) -> tensor<?x6x?x?xf32>
  %o = transformer.matmul %p, %vr : (tensor<?x6x?x?xf32>, tensor<?x6x?x16xf32>) -> tensor<?x6x?x16xf32>
  return %o : tensor<?x6x?x16xf32>
}

// -----

// Negative: the probabilities are also returned (output_attentions), so the
// scores must exist and the softmax stays.
// CHECK-LABEL: func @probabilities_used
// CHECK-NOT: transformer.attention
func.func @probabilities_used(%q: tensor<1x2x3x4xf32>, %kt: tensor<1x2x4x3xf32>, %v: tensor<1x2x3x4xf32>) -> (tensor<1x2x3x4xf32>, tensor<1x2x3x3xf32>) {
  %s = transformer.matmul %q, %kt : (tensor<1x2x3x4xf32>, tensor<1x2x4x3xf32>) -> tensor<1x2x3x3xf32>
  // expected-remark @+1 {{not fused as attention: the probabilities have users other than one MatMul}}
  %p = transformer.softmax %s {axis = -1 : i64} : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %o = transformer.matmul %p, %v : (tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  return %o, %p : tensor<1x2x3x4xf32>, tensor<1x2x3x3xf32>
}

// -----

// BLOOM's merged-heads form: baddbmm on [B*H, S, S] with ALiBi added there,
// a Reshape to 4-D for the mask, and a 3-D bmm with V. The 4-D Q/K/V are
// used directly; ALiBi is reshaped to [B, H, 1, Sk], a second mask.
// CHECK-LABEL: func @bloom_merged_heads
// CHECK: %[[ALIBI:.*]] = transformer.reshape %arg3, %{{.*}} {allowzero = true}
// CHECK-SAME: -> tensor<?x6x1x?xf32>
// CHECK: %[[A:.*]] = transformer.attention %arg0, %arg1, %arg2, %arg4, %[[ALIBI]] {scale = 2.500000e-01 : f32}
// CHECK-NEXT: return %[[A]]
func.func @bloom_merged_heads(%q: tensor<?x6x?x16xf32>, %k: tensor<?x6x?x16xf32>, %v: tensor<?x6x?x16xf32>, %alibi: tensor<?x1x?xf32>, %mask: tensor<?x1x?x?xf32>, %s3: tensor<3xi64>, %s4: tensor<4xi64>) -> tensor<?x6x?x16xf32> {
  %c = transformer.constant dense<0.25> : tensor<f32>
  %q3 = transformer.reshape %q, %s3 {allowzero = false} : (tensor<?x6x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %k3 = transformer.reshape %k, %s3 {allowzero = false} : (tensor<?x6x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %v3 = transformer.reshape %v, %s3 {allowzero = false} : (tensor<?x6x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %kt = transformer.transpose %k3 {perm = array<i64: 0, 2, 1>} : (tensor<?x?x16xf32>) -> tensor<?x16x?xf32>
  %s = transformer.matmul %q3, %kt : (tensor<?x?x16xf32>, tensor<?x16x?xf32>) -> tensor<?x?x?xf32>
  %ss = transformer.mul %s, %c : (tensor<?x?x?xf32>, tensor<f32>) -> tensor<?x?x?xf32>
  %sa = transformer.add %ss, %alibi : (tensor<?x?x?xf32>, tensor<?x1x?xf32>) -> tensor<?x?x?xf32>
  %s4d = transformer.reshape %sa, %s4 {allowzero = false} : (tensor<?x?x?xf32>, tensor<4xi64>) -> tensor<?x6x?x?xf32>
  %sm = transformer.add %s4d, %mask : (tensor<?x6x?x?xf32>, tensor<?x1x?x?xf32>) -> tensor<?x6x?x?xf32>
  %p = transformer.softmax %sm {axis = -1 : i64} : (tensor<?x6x?x?xf32>) -> tensor<?x6x?x?xf32>
  %p3 = transformer.reshape %p, %s3 {allowzero = false} : (tensor<?x6x?x?xf32>, tensor<3xi64>) -> tensor<?x?x?xf32>
  %o3 = transformer.matmul %p3, %v3 : (tensor<?x?x?xf32>, tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
  %o = transformer.reshape %o3, %s4 {allowzero = false} : (tensor<?x?x16xf32>, tensor<4xi64>) -> tensor<?x6x?x16xf32>
  return %o : tensor<?x6x?x16xf32>
}

// -----

// The same with an empty key dim in ALiBi ([B*H, 1, 0]): its reshape to
// [B, H, 1, 0] takes the 0 as a size (allowzero), not as "copy the input's
// dim 3", which the 3-D bias does not have (the compiler aborted there).
// CHECK-LABEL: func @bloom_empty_bias
// CHECK: %[[ALIBI:.*]] = transformer.reshape %arg3, %{{.*}} {allowzero = true}
// CHECK-SAME: -> tensor<?x6x1x0xf32>
// CHECK: %[[A:.*]] = transformer.attention %arg0, %arg1, %arg2, %arg4, %[[ALIBI]] {scale = 2.500000e-01 : f32}
// CHECK-NEXT: return %[[A]]
func.func @bloom_empty_bias(%q: tensor<?x6x?x16xf32>, %k: tensor<?x6x?x16xf32>, %v: tensor<?x6x?x16xf32>, %alibi: tensor<?x1x0xf32>, %mask: tensor<?x1x?x?xf32>, %s3: tensor<3xi64>, %s4: tensor<4xi64>) -> tensor<?x6x?x16xf32> {
  %c = transformer.constant dense<0.25> : tensor<f32>
  %q3 = transformer.reshape %q, %s3 {allowzero = false} : (tensor<?x6x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %k3 = transformer.reshape %k, %s3 {allowzero = false} : (tensor<?x6x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %v3 = transformer.reshape %v, %s3 {allowzero = false} : (tensor<?x6x?x16xf32>, tensor<3xi64>) -> tensor<?x?x16xf32>
  %kt = transformer.transpose %k3 {perm = array<i64: 0, 2, 1>} : (tensor<?x?x16xf32>) -> tensor<?x16x?xf32>
  %s = transformer.matmul %q3, %kt : (tensor<?x?x16xf32>, tensor<?x16x?xf32>) -> tensor<?x?x?xf32>
  %ss = transformer.mul %s, %c : (tensor<?x?x?xf32>, tensor<f32>) -> tensor<?x?x?xf32>
  %sa = transformer.add %ss, %alibi : (tensor<?x?x?xf32>, tensor<?x1x0xf32>) -> tensor<?x?x?xf32>
  %s4d = transformer.reshape %sa, %s4 {allowzero = false} : (tensor<?x?x?xf32>, tensor<4xi64>) -> tensor<?x6x?x?xf32>
  %sm = transformer.add %s4d, %mask : (tensor<?x6x?x?xf32>, tensor<?x1x?x?xf32>) -> tensor<?x6x?x?xf32>
  %p = transformer.softmax %sm {axis = -1 : i64} : (tensor<?x6x?x?xf32>) -> tensor<?x6x?x?xf32>
  %p3 = transformer.reshape %p, %s3 {allowzero = false} : (tensor<?x6x?x?xf32>, tensor<3xi64>) -> tensor<?x?x?xf32>
  %o3 = transformer.matmul %p3, %v3 : (tensor<?x?x?xf32>, tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
  %o = transformer.reshape %o3, %s4 {allowzero = false} : (tensor<?x?x16xf32>, tensor<4xi64>) -> tensor<?x6x?x16xf32>
  return %o : tensor<?x6x?x16xf32>
}

// -----

// Negative: 3-D scores that do not come from 4-D heads (a plain bmm).
// CHECK-LABEL: func @rank3_scores
// CHECK-NOT: transformer.attention
func.func @rank3_scores(%q: tensor<6x3x4xf32>, %kt: tensor<6x4x3xf32>, %v: tensor<6x3x4xf32>) -> tensor<6x3x4xf32> {
  %s = transformer.matmul %q, %kt : (tensor<6x3x4xf32>, tensor<6x4x3xf32>) -> tensor<6x3x3xf32>
  // expected-remark @+1 {{not fused as attention: its scores are not [B, H, Sq, Sk] (rank 3)}}
  %p = transformer.softmax %s {axis = -1 : i64} : (tensor<6x3x3xf32>) -> tensor<6x3x3xf32>
  %o = transformer.matmul %p, %v : (tensor<6x3x3xf32>, tensor<6x3x4xf32>) -> tensor<6x3x4xf32>
  return %o : tensor<6x3x4xf32>
}

// -----

// Negative: a softmax over the heads axis is not attention.
// CHECK-LABEL: func @wrong_axis
// CHECK-NOT: transformer.attention
func.func @wrong_axis(%q: tensor<1x2x3x4xf32>, %kt: tensor<1x2x4x3xf32>, %v: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  %s = transformer.matmul %q, %kt : (tensor<1x2x3x4xf32>, tensor<1x2x4x3xf32>) -> tensor<1x2x3x3xf32>
  // expected-remark @+1 {{it is not over the last axis}}
  %p = transformer.softmax %s {axis = 1 : i64} : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %o = transformer.matmul %p, %v : (tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  return %o : tensor<1x2x3x4xf32>
}

// -----

// T5's relative position bias masked as transformers writes it, where(m,
// bias, finfo(f32).min), the bias rows of a constant [buckets, heads] table
// (gathered, transposed, unsqueezed): the bias and where(m, 0, min) go in
// as two masks, so that no [B, H, Sq, Sk] `where` is built.
// CHECK-LABEL: func @t5_masked_bias
// CHECK-DAG: %[[MIN:.*]] = transformer.constant dense<-3.40282347E+38> : tensor<f32>
// CHECK-DAG: %[[ZERO:.*]] = transformer.constant dense<0.000000e+00> : tensor<f32>
// CHECK-DAG: %[[BIAS:.*]] = transformer.unsqueeze
// CHECK-DAG: %[[M:.*]] = transformer.where %arg3, %[[ZERO]], %[[MIN]] : (tensor<1x1x1x4xi1>, tensor<f32>, tensor<f32>) -> tensor<1x1x1x4xf32>
// CHECK: transformer.attention %arg0, %{{.*}}, %arg2, %[[BIAS]], %[[M]] {scale = 1.000000e+00 : f32}
func.func @t5_masked_bias(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %m: tensor<1x1x1x4xi1>, %idx: tensor<4x4xi64>) -> tensor<1x2x4x8xf32> {
  %table = transformer.constant dense<[[0.5, -0.5], [1.0, 2.0], [0.0, 3.0]]> : tensor<3x2xf32>
  %min = transformer.constant dense<-3.40282347E+38> : tensor<f32>
  %g = transformer.gather %table, %idx {axis = 0 : i64} : (tensor<3x2xf32>, tensor<4x4xi64>) -> tensor<4x4x2xf32>
  %t = transformer.transpose %g {perm = array<i64: 2, 0, 1>} : (tensor<4x4x2xf32>) -> tensor<2x4x4xf32>
  %b = transformer.unsqueeze %t {axes = array<i64: 0>} : (tensor<2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %mask = transformer.where %m, %b, %min : (tensor<1x1x1x4xi1>, tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %kt = transformer.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x8xf32>) -> tensor<1x2x8x4xf32>
  %s = transformer.matmul %q, %kt : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
  %sm = transformer.add %s, %mask : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = transformer.softmax %sm {axis = -1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o = transformer.matmul %p, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %o : tensor<1x2x4x8xf32>
}

// -----

// A masked bias that stays one mask: its x is not rows of a constant table
// (a bound on it is not known), or its masking value is not below every
// score.
// CHECK-LABEL: func @masked_bias_kept
// CHECK: %[[W0:.*]] = transformer.where %arg3, %arg4, %{{.*}} :
// CHECK: %[[W1:.*]] = transformer.where %arg3, %{{.*}}, %{{.*}} :
// CHECK: transformer.attention %arg0, %{{.*}}, %arg2, %[[W0]] {scale = 1.000000e+00 : f32}
// CHECK: transformer.attention %arg0, %{{.*}}, %arg2, %[[W1]] {scale = 1.000000e+00 : f32}
func.func @masked_bias_kept(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %m: tensor<1x1x1x4xi1>, %bias: tensor<1x2x4x4xf32>, %idx: tensor<4x4xi64>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
  %min = transformer.constant dense<-3.40282347E+38> : tensor<f32>
  %mask0 = transformer.where %m, %bias, %min : (tensor<1x1x1x4xi1>, tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %table = transformer.constant dense<[[0.5, -0.5], [1.0, 2.0], [0.0, 3.0]]> : tensor<3x2xf32>
  %minus1 = transformer.constant dense<-1.0> : tensor<f32>
  %g = transformer.gather %table, %idx {axis = 0 : i64} : (tensor<3x2xf32>, tensor<4x4xi64>) -> tensor<4x4x2xf32>
  %t = transformer.transpose %g {perm = array<i64: 2, 0, 1>} : (tensor<4x4x2xf32>) -> tensor<2x4x4xf32>
  %b = transformer.unsqueeze %t {axes = array<i64: 0>} : (tensor<2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %mask1 = transformer.where %m, %b, %minus1 : (tensor<1x1x1x4xi1>, tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %kt = transformer.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x8xf32>) -> tensor<1x2x8x4xf32>
  %s0 = transformer.matmul %q, %kt : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
  %sm0 = transformer.add %s0, %mask0 : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p0 = transformer.softmax %sm0 {axis = -1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o0 = transformer.matmul %p0, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  %s1 = transformer.matmul %q, %kt : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
  %sm1 = transformer.add %s1, %mask1 : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p1 = transformer.softmax %sm1 {axis = -1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o1 = transformer.matmul %p1, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %o0, %o1 : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
}

// -----

// Gemma 2's eager attention: (Q K^T) * 0.25 / 1.5, tanh, * 1.5 (the
// softcap), then the mask: the attention's softcap 1.5 on scores scaled
// by 0.25 (the inner factor 0.25 / 1.5 times the cap).
// CHECK-LABEL: func @gemma2_softcap
// CHECK: transformer.attention %arg0, %{{.*}}, %arg2, %arg3 {scale = 2.500000e-01 : f32, softcap = 1.500000e+00 : f32}
// CHECK-NOT: transformer.tanh
func.func @gemma2_softcap(%q: tensor<1x4x5x16xf32>, %kt: tensor<1x4x16x5xf32>, %v: tensor<1x4x5x16xf32>, %causal: tensor<1x1x5x5xf32>) -> tensor<1x4x5x16xf32> {
  %scaling = transformer.constant dense<0.25> : tensor<f32>
  %cap = transformer.constant dense<1.5> : tensor<f32>
  %s = transformer.matmul %q, %kt : (tensor<1x4x5x16xf32>, tensor<1x4x16x5xf32>) -> tensor<1x4x5x5xf32>
  %s1 = transformer.mul %s, %scaling : (tensor<1x4x5x5xf32>, tensor<f32>) -> tensor<1x4x5x5xf32>
  %s2 = transformer.div %s1, %cap : (tensor<1x4x5x5xf32>, tensor<f32>) -> tensor<1x4x5x5xf32>
  %t = transformer.tanh %s2 : (tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %c = transformer.mul %t, %cap : (tensor<1x4x5x5xf32>, tensor<f32>) -> tensor<1x4x5x5xf32>
  %sm = transformer.add %c, %causal : (tensor<1x4x5x5xf32>, tensor<1x1x5x5xf32>) -> tensor<1x4x5x5xf32>
  %p = transformer.softmax %sm {axis = 3 : i64} : (tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %o = transformer.matmul %p, %v : (tensor<1x4x5x5xf32>, tensor<1x4x5x16xf32>) -> tensor<1x4x5x16xf32>
  return %o : tensor<1x4x5x16xf32>
}

// -----

// Negative: the capped scores are also read elsewhere (the tanh has a
// second user), so the scores stay as they are.
// CHECK-LABEL: func @softcap_shared
// CHECK-NOT: transformer.attention
func.func @softcap_shared(%q: tensor<1x4x5x16xf32>, %kt: tensor<1x4x16x5xf32>, %v: tensor<1x4x5x16xf32>) -> (tensor<1x4x5x16xf32>, tensor<1x4x5x5xf32>) {
  %cap = transformer.constant dense<1.5> : tensor<f32>
  %s = transformer.matmul %q, %kt : (tensor<1x4x5x16xf32>, tensor<1x4x16x5xf32>) -> tensor<1x4x5x5xf32>
  %s2 = transformer.div %s, %cap : (tensor<1x4x5x5xf32>, tensor<f32>) -> tensor<1x4x5x5xf32>
  %t = transformer.tanh %s2 : (tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %c = transformer.mul %t, %cap : (tensor<1x4x5x5xf32>, tensor<f32>) -> tensor<1x4x5x5xf32>
  // expected-remark @+1 {{not fused as attention: its input is not MatMul(Q, K^T) (scaled, plus masks)}}
  %p = transformer.softmax %c {axis = 3 : i64} : (tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %o = transformer.matmul %p, %v : (tensor<1x4x5x5xf32>, tensor<1x4x5x16xf32>) -> tensor<1x4x5x16xf32>
  return %o, %t : tensor<1x4x5x16xf32>, tensor<1x4x5x5xf32>
}
