// RUN: transfuse-opt %s -split-input-file -verify-diagnostics
// The verifier re-runs shape inference: each op names what it expected.

func.func @broadcast_mismatch(%a: tensor<3x4xf32>, %b: tensor<5xf32>) {
  // expected-error @+1 {{shapes cannot be broadcast: dim 1 is 4 on one side and 5 on the other}}
  %0 = transformer.add %a, %b : (tensor<3x4xf32>, tensor<5xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @matmul_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{contraction dims differ: 3 vs 4}}
  %0 = transformer.matmul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @wrong_result(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{result type 'tensor<3x2xf32>' is incompatible with the inferred type 'tensor<2x3xf32>'}}
  %0 = transformer.relu %a : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return
}

// -----

func.func @bad_perm(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm is not a permutation}}
  %0 = transformer.transpose %a {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  return
}

// -----

func.func @two_minus_ones(%a: tensor<6xf32>) {
  %s = transformer.constant dense<[-1, -1]> : tensor<2xi64>
  // expected-error @+1 {{the shape has more than one -1}}
  %0 = transformer.reshape %a, %s {allowzero = false} : (tensor<6xf32>, tensor<2xi64>) -> tensor<?x?xf32>
  return
}

// -----

func.func @squeeze_non_unit(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot squeeze dim 0 of size 2}}
  %0 = transformer.squeeze %a {axes = array<i64: 0>} : (tensor<2x3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @float_only(%a: tensor<4xi64>) {
  // expected-error @+1 {{expects a floating-point operand}}
  %0 = transformer.erf %a : (tensor<4xi64>) -> tensor<4xi64>
  return
}

// -----

func.func @axis_range(%a: tensor<4xf32>) {
  // expected-error @+1 {{axis is out of range}}
  %0 = transformer.softmax %a {axis = 1 : i64} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @mixed_types(%a: tensor<4xf32>, %b: tensor<4xi64>) {
  // expected-error @+1 {{operand element types differ}}
  %0 = transformer.mul %a, %b : (tensor<4xf32>, tensor<4xi64>) -> tensor<4xf32>
  return
}

// -----

func.func @attention_heads(%q: tensor<1x6x4x16xf32>, %k: tensor<1x4x4x16xf32>) {
  // expected-error @+1 {{6 query heads are not a multiple of 4 key/value heads}}
  %0 = transformer.attention %q, %k, %k {scale = 1.0 : f32} : (tensor<1x6x4x16xf32>, tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>) -> tensor<1x6x4x16xf32>
  return
}

// -----

func.func @attention_algorithm(%q: tensor<1x4x4x16xf32>) {
  // expected-error @+1 {{unknown algorithm 'flash'}}
  %0 = transformer.attention %q, %q, %q {scale = 1.0 : f32, algorithm = "flash"} : (tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>) -> tensor<1x4x4x16xf32>
  return
}

// -----

func.func @linear_k(%x: tensor<2x32xf32>, %w: tensor<64x8xf32>) {
  // expected-error @+1 {{input has K = 32 but weight has 64 rows}}
  %0 = transformer.linear %x, %w : (tensor<2x32xf32>, tensor<64x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @norm_scale(%x: tensor<2x64xf32>, %g: tensor<32xf32>) {
  // expected-error @+1 {{a 1-D parameter has 32 entries for a dim of 64}}
  %0 = transformer.rms_norm %x, %g {epsilon = 1.0e-6 : f32} : (tensor<2x64xf32>, tensor<32xf32>) -> tensor<2x64xf32>
  return
}

// -----

func.func @rotary_odd(%x: tensor<2x4x16xf32>, %c: tensor<1x4x7xf32>) {
  // expected-error @+1 {{rotary_dim 7 must be even, positive and at most the last dim (16)}}
  %0 = transformer.rotary_embedding %x, %c, %c {rotary_dim = 7 : i64} : (tensor<2x4x16xf32>, tensor<1x4x7xf32>, tensor<1x4x7xf32>) -> tensor<2x4x16xf32>
  return
}

// -----

func.func @rotary_cos_width(%x: tensor<2x4x16xf32>, %c: tensor<1x4x16xf32>) {
  // expected-error @+1 {{cos and sin must have rotary_dim (8) entries in the last dim}}
  %0 = transformer.rotary_embedding %x, %c, %c {rotary_dim = 8 : i64} : (tensor<2x4x16xf32>, tensor<1x4x16xf32>, tensor<1x4x16xf32>) -> tensor<2x4x16xf32>
  return
}

// -----

func.func @linear_gated_odd(%x: tensor<2x32xf32>, %w: tensor<32x7xf32>) {
  // expected-error @+1 {{a gated linear needs an even number of weight columns, not 7}}
  %0 = transformer.linear %x, %w {activation = "silu", gated = true} : (tensor<2x32xf32>, tensor<32x7xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @toeplitz_sizes(%d: tensor<2x7xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{sizes must be a 2-entry 1-D tensor (rows, cols)}}
  %0 = transformer.toeplitz %d, %s : (tensor<2x7xf32>, tensor<3xi64>) -> tensor<2x?x?xf32>
  return
}

// -----

func.func @toeplitz_length(%d: tensor<2x7xf32>) {
  %s = transformer.constant dense<[4, 5]> : tensor<2xi64>
  // expected-error @+1 {{the input's last dim is 7, not rows + cols - 1 = 8}}
  %0 = transformer.toeplitz %d, %s : (tensor<2x7xf32>, tensor<2xi64>) -> tensor<2x4x5xf32>
  return
}

// -----

func.func @kv_cache_update_heads(%p: tensor<1x2x5x16xf32>, %u: tensor<1x4x1x16xf32>, %l: tensor<1xi64>, %t: tensor<i64>) {
  // expected-error @+1 {{past and update differ in dim 1 (2 vs 4)}}
  %0 = transformer.kv_cache_update %p, %u, %l, %t : (tensor<1x2x5x16xf32>, tensor<1x4x1x16xf32>, tensor<1xi64>, tensor<i64>) -> tensor<1x2x?x16xf32>
  return
}

// -----

func.func @kv_cache_update_lengths(%p: tensor<2x2x5x16xf32>, %u: tensor<2x2x1x16xf32>, %l: tensor<3xi64>, %t: tensor<i64>) {
  // expected-error @+1 {{past_lengths has 3 entries for a batch of 2}}
  %0 = transformer.kv_cache_update %p, %u, %l, %t : (tensor<2x2x5x16xf32>, tensor<2x2x1x16xf32>, tensor<3xi64>, tensor<i64>) -> tensor<2x2x?x16xf32>
  return
}

// -----

func.func @kv_cache_update_rows(%p: tensor<1x2x5x16xf32>, %u: tensor<1x2x1x16xf32>, %l: tensor<1xi64>) {
  %t = transformer.constant dense<-1> : tensor<i64>
  // expected-error @+1 {{rows must not be negative}}
  %0 = transformer.kv_cache_update %p, %u, %l, %t : (tensor<1x2x5x16xf32>, tensor<1x2x1x16xf32>, tensor<1xi64>, tensor<i64>) -> tensor<1x2x?x16xf32>
  return
}
