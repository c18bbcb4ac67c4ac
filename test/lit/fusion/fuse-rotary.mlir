// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-fuse-rotary{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// LLaMA as torch.onnx.export (TorchScript) writes it: q * cos +
// rotate_half(q) * sin, rotate_half = Concat(-q[..., 8:], q[..., :8]).
// CHECK-LABEL: func @llama_half_split
// CHECK-NEXT: %[[R:.*]] = transformer.rotary_embedding %arg0, %arg1, %arg2 {rotary_dim = 16 : i64}
// CHECK-NEXT: return %[[R]]
func.func @llama_half_split(%q: tensor<?x4x?x16xf32>, %cos: tensor<1x1x?x16xf32>, %sin: tensor<1x1x?x16xf32>) -> tensor<?x4x?x16xf32> {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c8 = transformer.constant dense<8> : tensor<1xi64>
  %big = transformer.constant dense<9223372036854775807> : tensor<1xi64>
  %0 = transformer.mul %q, %cos : (tensor<?x4x?x16xf32>, tensor<1x1x?x16xf32>) -> tensor<?x4x?x16xf32>
  %1 = transformer.slice %q, %c0, %c8 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32>
  %2 = transformer.slice %q, %c8, %big {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<?x4x?x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x4x?x8xf32>
  %3 = transformer.neg %2 : (tensor<?x4x?x8xf32>) -> tensor<?x4x?x8xf32>
  %4 = transformer.concat %3, %1 {axis = -1 : i64} : (tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>) -> tensor<?x4x?x16xf32>
  %5 = transformer.mul %4, %sin : (tensor<?x4x?x16xf32>, tensor<1x1x?x16xf32>) -> tensor<?x4x?x16xf32>
  %6 = transformer.add %0, %5 : (tensor<?x4x?x16xf32>, tensor<?x4x?x16xf32>) -> tensor<?x4x?x16xf32>
  return %6 : tensor<?x4x?x16xf32>
}

// -----

// The dynamo exporter's order: cos * q, sin * rotate_half(q), the sin term
// first in the add, and negative slice bounds.
// CHECK-LABEL: func @dynamo_order
// CHECK-NEXT: %[[R:.*]] = transformer.rotary_embedding %arg0, %arg1, %arg2 {rotary_dim = 16 : i64}
// CHECK-NEXT: return %[[R]]
func.func @dynamo_order(%q: tensor<2x4x6x16xf32>, %cos: tensor<2x1x6x16xf32>, %sin: tensor<2x1x6x16xf32>) -> tensor<2x4x6x16xf32> {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %cm8 = transformer.constant dense<-8> : tensor<1xi64>
  %c16 = transformer.constant dense<16> : tensor<1xi64>
  %1 = transformer.slice %q, %c0, %cm8 {axes = array<i64: -1>, steps = array<i64: 1>} : (tensor<2x4x6x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x6x8xf32>
  %2 = transformer.slice %q, %cm8, %c16 {axes = array<i64: -1>, steps = array<i64: 1>} : (tensor<2x4x6x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4x6x8xf32>
  %3 = transformer.neg %2 : (tensor<2x4x6x8xf32>) -> tensor<2x4x6x8xf32>
  %4 = transformer.concat %3, %1 {axis = 3 : i64} : (tensor<2x4x6x8xf32>, tensor<2x4x6x8xf32>) -> tensor<2x4x6x16xf32>
  %5 = transformer.mul %sin, %4 : (tensor<2x1x6x16xf32>, tensor<2x4x6x16xf32>) -> tensor<2x4x6x16xf32>
  %0 = transformer.mul %cos, %q : (tensor<2x1x6x16xf32>, tensor<2x4x6x16xf32>) -> tensor<2x4x6x16xf32>
  %6 = transformer.add %5, %0 : (tensor<2x4x6x16xf32>, tensor<2x4x6x16xf32>) -> tensor<2x4x6x16xf32>
  return %6 : tensor<2x4x6x16xf32>
}

// -----

// GLM: interleaved pairs (stack((-x[1::2], x[0::2]), -1).flatten(-2)) on
// the first 8 of 16 channels; the other 8 are concatenated back.
// CHECK-LABEL: func @glm_interleaved_partial
// CHECK-NEXT: %[[R:.*]] = transformer.rotary_embedding %arg0, %arg1, %arg2 {interleaved = true, rotary_dim = 8 : i64}
// CHECK-NEXT: return %[[R]]
func.func @glm_interleaved_partial(%q: tensor<1x2x5x16xf32>, %cos: tensor<1x1x5x8xf32>, %sin: tensor<1x1x5x8xf32>) -> tensor<1x2x5x16xf32> {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c1 = transformer.constant dense<1> : tensor<1xi64>
  %c8 = transformer.constant dense<8> : tensor<1xi64>
  %c16 = transformer.constant dense<16> : tensor<1xi64>
  %big = transformer.constant dense<9223372036854775807> : tensor<1xi64>
  %shape = transformer.constant dense<[1, 2, 5, 8]> : tensor<4xi64>
  %rot = transformer.slice %q, %c0, %c8 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<1x2x5x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x5x8xf32>
  %pass = transformer.slice %q, %c8, %c16 {axes = array<i64: 3>, steps = array<i64: 1>} : (tensor<1x2x5x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x5x8xf32>
  %m0 = transformer.mul %rot, %cos : (tensor<1x2x5x8xf32>, tensor<1x1x5x8xf32>) -> tensor<1x2x5x8xf32>
  %even = transformer.slice %rot, %c0, %big {axes = array<i64: 3>, steps = array<i64: 2>} : (tensor<1x2x5x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x5x4xf32>
  %odd = transformer.slice %rot, %c1, %big {axes = array<i64: 3>, steps = array<i64: 2>} : (tensor<1x2x5x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x5x4xf32>
  %neg = transformer.neg %odd : (tensor<1x2x5x4xf32>) -> tensor<1x2x5x4xf32>
  %u0 = transformer.unsqueeze %neg {axes = array<i64: -1>} : (tensor<1x2x5x4xf32>) -> tensor<1x2x5x4x1xf32>
  %u1 = transformer.unsqueeze %even {axes = array<i64: 4>} : (tensor<1x2x5x4xf32>) -> tensor<1x2x5x4x1xf32>
  %st = transformer.concat %u0, %u1 {axis = -1 : i64} : (tensor<1x2x5x4x1xf32>, tensor<1x2x5x4x1xf32>) -> tensor<1x2x5x4x2xf32>
  %flat = transformer.reshape %st, %shape {allowzero = false} : (tensor<1x2x5x4x2xf32>, tensor<4xi64>) -> tensor<1x2x5x8xf32>
  %m1 = transformer.mul %flat, %sin : (tensor<1x2x5x8xf32>, tensor<1x1x5x8xf32>) -> tensor<1x2x5x8xf32>
  %sum = transformer.add %m0, %m1 : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32>
  %out = transformer.concat %sum, %pass {axis = -1 : i64} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x16xf32>
  return %out : tensor<1x2x5x16xf32>
}

// -----

// GPT-J as the TorchScript exporter writes it: flatten(-2)'s target comes
// from the stack's own shape (its first three dims and -1). That read is
// rebuilt from x's shape, so the stack dies with the rest.
// CHECK-LABEL: func @gptj_flatten_reads_stack_shape
// CHECK-DAG: %[[R:.*]] = transformer.rotary_embedding %arg0, %arg1, %arg2 {interleaved = true, rotary_dim = 8 : i64}
// CHECK-DAG: %[[S:.*]] = transformer.shape %arg0 {end = 3 : i64, start = 0 : i64} : (tensor<?x?x6x8xf32>) -> tensor<3xi64>
// CHECK-NOT: transformer.concat
// CHECK-NOT: transformer.neg
// CHECK: return %[[R]], %[[S]]
func.func @gptj_flatten_reads_stack_shape(%x: tensor<?x?x6x8xf32>, %cos: tensor<1x?x1x8xf32>, %sin: tensor<1x?x1x8xf32>) -> (tensor<?x?x6x8xf32>, tensor<3xi64>) {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c1 = transformer.constant dense<1> : tensor<1xi64>
  %c3 = transformer.constant dense<3> : tensor<1xi64>
  %m1 = transformer.constant dense<-1> : tensor<1xi64>
  %big = transformer.constant dense<9223372036854775807> : tensor<1xi64>
  %m0 = transformer.mul %x, %cos : (tensor<?x?x6x8xf32>, tensor<1x?x1x8xf32>) -> tensor<?x?x6x8xf32>
  %even = transformer.slice %x, %c0, %big {axes = array<i64: 3>, steps = array<i64: 2>} : (tensor<?x?x6x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x6x4xf32>
  %odd = transformer.slice %x, %c1, %big {axes = array<i64: 3>, steps = array<i64: 2>} : (tensor<?x?x6x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x6x4xf32>
  %neg = transformer.neg %odd : (tensor<?x?x6x4xf32>) -> tensor<?x?x6x4xf32>
  %u0 = transformer.unsqueeze %neg {axes = array<i64: -1>} : (tensor<?x?x6x4xf32>) -> tensor<?x?x6x4x1xf32>
  %u1 = transformer.unsqueeze %even {axes = array<i64: -1>} : (tensor<?x?x6x4xf32>) -> tensor<?x?x6x4x1xf32>
  %st = transformer.concat %u0, %u1 {axis = -1 : i64} : (tensor<?x?x6x4x1xf32>, tensor<?x?x6x4x1xf32>) -> tensor<?x?x6x4x2xf32>
  %sh = transformer.shape %st {end = 3 : i64, start = 0 : i64} : (tensor<?x?x6x4x2xf32>) -> tensor<3xi64>
  %target = transformer.concat %sh, %m1 {axis = 0 : i64} : (tensor<3xi64>, tensor<1xi64>) -> tensor<4xi64>
  %flat = transformer.reshape %st, %target {allowzero = false} : (tensor<?x?x6x4x2xf32>, tensor<4xi64>) -> tensor<?x?x6x8xf32>
  %m2 = transformer.mul %flat, %sin : (tensor<?x?x6x8xf32>, tensor<1x?x1x8xf32>) -> tensor<?x?x6x8xf32>
  %sum = transformer.add %m0, %m2 : (tensor<?x?x6x8xf32>, tensor<?x?x6x8xf32>) -> tensor<?x?x6x8xf32>
  return %sum, %sh : tensor<?x?x6x8xf32>, tensor<3xi64>
}

// -----

// Negative: the stack is read by something other than its flattening and
// shape reads.
// CHECK-LABEL: func @stack_read_elsewhere
// CHECK-NOT: rotary_embedding
func.func @stack_read_elsewhere(%x: tensor<2x8xf32>, %cos: tensor<2x8xf32>, %sin: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x4x2xf32>) {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c1 = transformer.constant dense<1> : tensor<1xi64>
  %big = transformer.constant dense<9223372036854775807> : tensor<1xi64>
  %shape = transformer.constant dense<[2, 8]> : tensor<2xi64>
  %m0 = transformer.mul %x, %cos : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %even = transformer.slice %x, %c0, %big {axes = array<i64: 1>, steps = array<i64: 2>} : (tensor<2x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4xf32>
  %odd = transformer.slice %x, %c1, %big {axes = array<i64: 1>, steps = array<i64: 2>} : (tensor<2x8xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x4xf32>
  // expected-remark @+1 {{not fused as rotary_embedding: the stacked pairs are not flattened back to [..., d]}}
  %neg = transformer.neg %odd : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %u0 = transformer.unsqueeze %neg {axes = array<i64: -1>} : (tensor<2x4xf32>) -> tensor<2x4x1xf32>
  %u1 = transformer.unsqueeze %even {axes = array<i64: -1>} : (tensor<2x4xf32>) -> tensor<2x4x1xf32>
  %st = transformer.concat %u0, %u1 {axis = -1 : i64} : (tensor<2x4x1xf32>, tensor<2x4x1xf32>) -> tensor<2x4x2xf32>
  %flat = transformer.reshape %st, %shape {allowzero = false} : (tensor<2x4x2xf32>, tensor<2xi64>) -> tensor<2x8xf32>
  %m2 = transformer.mul %flat, %sin : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %sum = transformer.add %m0, %m2 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %sum, %st : tensor<2x8xf32>, tensor<2x4x2xf32>
}

// -----

// Negative: the negated slice is not the upper half.
// CHECK-LABEL: func @not_half
// CHECK-NOT: rotary_embedding
func.func @not_half(%q: tensor<2x16xf32>) -> tensor<2x12xf32> {
  %c4 = transformer.constant dense<4> : tensor<1xi64>
  %c16 = transformer.constant dense<16> : tensor<1xi64>
  %0 = transformer.slice %q, %c4, %c16 {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<2x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x12xf32>
  // expected-remark @+1 {{not fused as rotary_embedding: it does not negate the upper half x[d/2:] of the last axis (half-split) or the odd channels x[1::2] (interleaved)}}
  %1 = transformer.neg %0 : (tensor<2x12xf32>) -> tensor<2x12xf32>
  return %1 : tensor<2x12xf32>
}

// -----

// Negative: rotate_half(q) * sin is added to k * cos, not q * cos.
// CHECK-LABEL: func @other_tensor
// CHECK-NOT: rotary_embedding
func.func @other_tensor(%q: tensor<2x16xf32>, %k: tensor<2x16xf32>, %cos: tensor<2x16xf32>, %sin: tensor<2x16xf32>) -> tensor<2x16xf32> {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c8 = transformer.constant dense<8> : tensor<1xi64>
  %c16 = transformer.constant dense<16> : tensor<1xi64>
  %0 = transformer.mul %k, %cos : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  %1 = transformer.slice %q, %c0, %c8 {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<2x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x8xf32>
  %2 = transformer.slice %q, %c8, %c16 {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<2x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x8xf32>
  // expected-remark @+1 {{not fused as rotary_embedding: rotate(x) * sin is not added to x * cos}}
  %3 = transformer.neg %2 : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %4 = transformer.concat %3, %1 {axis = 1 : i64} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x16xf32>
  %5 = transformer.mul %4, %sin : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  %6 = transformer.add %0, %5 : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  return %6 : tensor<2x16xf32>
}

// -----

// Negative: cos and sin would widen the input ([2, 3, 16] against [2, 1, 16]).
// CHECK-LABEL: func @widening_cos
// CHECK-NOT: rotary_embedding
func.func @widening_cos(%q: tensor<2x1x16xf32>, %cos: tensor<2x3x16xf32>, %sin: tensor<2x3x16xf32>) -> tensor<2x3x16xf32> {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c8 = transformer.constant dense<8> : tensor<1xi64>
  %c16 = transformer.constant dense<16> : tensor<1xi64>
  %0 = transformer.mul %q, %cos : (tensor<2x1x16xf32>, tensor<2x3x16xf32>) -> tensor<2x3x16xf32>
  %1 = transformer.slice %q, %c0, %c8 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<2x1x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x1x8xf32>
  %2 = transformer.slice %q, %c8, %c16 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<2x1x16xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x1x8xf32>
  // expected-remark @+1 {{not fused as rotary_embedding: cos or sin does not fit the input: cos and sin must broadcast to the input, not widen it}}
  %3 = transformer.neg %2 : (tensor<2x1x8xf32>) -> tensor<2x1x8xf32>
  %4 = transformer.concat %3, %1 {axis = 2 : i64} : (tensor<2x1x8xf32>, tensor<2x1x8xf32>) -> tensor<2x1x16xf32>
  %5 = transformer.mul %4, %sin : (tensor<2x1x16xf32>, tensor<2x3x16xf32>) -> tensor<2x3x16xf32>
  %6 = transformer.add %0, %5 : (tensor<2x3x16xf32>, tensor<2x3x16xf32>) -> tensor<2x3x16xf32>
  return %6 : tensor<2x3x16xf32>
}
