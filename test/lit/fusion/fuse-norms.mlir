// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-fuse-norms{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// ONNX LayerNormalization over the last axis, after a residual add whose sum
// is also used later (pre-LN): skip-layernorm with the sum as result 2.
// CHECK-LABEL: func @native_skip
// CHECK-NEXT: %[[N:.*]], %[[S:.*]] = transformer.layer_norm %arg0 residual %arg1 scale %arg2 bias %arg3 {epsilon = 9.99999974E-6 : f32}
// CHECK-NEXT: return %[[N]], %[[S]]
func.func @native_skip(%a: tensor<?x?x64xf32>, %b: tensor<?x?x64xf32>, %g: tensor<64xf32>, %bt: tensor<64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
  %s = transformer.add %a, %b : (tensor<?x?x64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  %0 = transformer.layer_normalization %s, %g, %bt {axis = -1 : i64, epsilon = 1.0e-5 : f32} : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  return %0, %s : tensor<?x?x64xf32>, tensor<?x?x64xf32>
}

// -----

// The decomposed LayerNorm of exports below opset 17.
// CHECK-LABEL: func @decomposed_layer_norm
// CHECK-NEXT: %[[N:.*]] = transformer.layer_norm %arg0 scale %arg1 bias %arg2 {epsilon = 9.99999996E-13 : f32}
// CHECK-NEXT: return %[[N]]
func.func @decomposed_layer_norm(%x: tensor<2x7x64xf32>, %g: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<2x7x64xf32> {
  %two = transformer.constant dense<2.0> : tensor<f32>
  %eps = transformer.constant dense<1.0e-12> : tensor<f32>
  %m = transformer.reduce_mean %x {axes = array<i64: -1>, keepdims = true} : (tensor<2x7x64xf32>) -> tensor<2x7x1xf32>
  %d = transformer.sub %x, %m : (tensor<2x7x64xf32>, tensor<2x7x1xf32>) -> tensor<2x7x64xf32>
  %sq = transformer.pow %d, %two : (tensor<2x7x64xf32>, tensor<f32>) -> tensor<2x7x64xf32>
  %v = transformer.reduce_mean %sq {axes = array<i64: -1>, keepdims = true} : (tensor<2x7x64xf32>) -> tensor<2x7x1xf32>
  %ve = transformer.add %v, %eps : (tensor<2x7x1xf32>, tensor<f32>) -> tensor<2x7x1xf32>
  %s = transformer.sqrt %ve : (tensor<2x7x1xf32>) -> tensor<2x7x1xf32>
  %n = transformer.div %d, %s : (tensor<2x7x64xf32>, tensor<2x7x1xf32>) -> tensor<2x7x64xf32>
  %y = transformer.mul %n, %g : (tensor<2x7x64xf32>, tensor<64xf32>) -> tensor<2x7x64xf32>
  %z = transformer.add %y, %b : (tensor<2x7x64xf32>, tensor<64xf32>) -> tensor<2x7x64xf32>
  return %z : tensor<2x7x64xf32>
}

// -----

// T5's RMSNorm as TorchScript exports it: Div(1, Sqrt) then Mul, weight first.
// CHECK-LABEL: func @rms_t5
// CHECK-NEXT: %[[N:.*]] = transformer.rms_norm %arg0, %arg1 {epsilon = 9.99999997E-7 : f32}
// CHECK-NEXT: return %[[N]]
func.func @rms_t5(%x: tensor<?x?x64xf32>, %w: tensor<64xf32>) -> tensor<?x?x64xf32> {
  %two = transformer.constant dense<2.0> : tensor<f32>
  %eps = transformer.constant dense<1.0e-6> : tensor<f32>
  %one = transformer.constant dense<1.0> : tensor<f32>
  %sq = transformer.pow %x, %two : (tensor<?x?x64xf32>, tensor<f32>) -> tensor<?x?x64xf32>
  %v = transformer.reduce_mean %sq {axes = array<i64: -1>, keepdims = true} : (tensor<?x?x64xf32>) -> tensor<?x?x1xf32>
  %ve = transformer.add %v, %eps : (tensor<?x?x1xf32>, tensor<f32>) -> tensor<?x?x1xf32>
  %s = transformer.sqrt %ve : (tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
  %r = transformer.div %one, %s : (tensor<f32>, tensor<?x?x1xf32>) -> tensor<?x?x1xf32>
  %n = transformer.mul %x, %r : (tensor<?x?x64xf32>, tensor<?x?x1xf32>) -> tensor<?x?x64xf32>
  %y = transformer.mul %w, %n : (tensor<64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

// The dynamo spelling (GLM, LLaMA): Reciprocal, x * x, no weight.
// CHECK-LABEL: func @rms_dynamo_no_weight
// CHECK: %[[ONES:.*]] = transformer.constant dense<1.000000e+00> : tensor<64xf32>
// CHECK: transformer.rms_norm %arg0, %[[ONES]]
func.func @rms_dynamo_no_weight(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %eps = transformer.constant dense<1.0e-5> : tensor<1xf32>
  %sq = transformer.mul %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %v = transformer.reduce_mean %sq {axes = array<i64: 1>, keepdims = true} : (tensor<?x64xf32>) -> tensor<?x1xf32>
  %ve = transformer.add %v, %eps : (tensor<?x1xf32>, tensor<1xf32>) -> tensor<?x1xf32>
  %s = transformer.sqrt %ve : (tensor<?x1xf32>) -> tensor<?x1xf32>
  %r = transformer.reciprocal %s : (tensor<?x1xf32>) -> tensor<?x1xf32>
  %n = transformer.mul %x, %r : (tensor<?x64xf32>, tensor<?x1xf32>) -> tensor<?x64xf32>
  return %n : tensor<?x64xf32>
}

// -----

// Negative: LayerNormalization over the last two axes stays as it is.
// CHECK-LABEL: func @two_axes
// CHECK: transformer.layer_normalization
func.func @two_axes(%x: tensor<2x7x64xf32>, %g: tensor<7x64xf32>) -> tensor<2x7x64xf32> {
  // expected-remark @+1 {{not fused as layer_norm or rms_norm: it normalizes over more than the last axis}}
  %0 = transformer.layer_normalization %x, %g {axis = -2 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x7x64xf32>, tensor<7x64xf32>) -> tensor<2x7x64xf32>
  return %0 : tensor<2x7x64xf32>
}

// -----

// Negative: a mean of squares whose epsilon is a tensor, not a scalar.
// CHECK-LABEL: func @tensor_epsilon
// CHECK-NOT: transformer.rms_norm
func.func @tensor_epsilon(%x: tensor<?x64xf32>, %e: tensor<?x1xf32>) -> tensor<?x64xf32> {
  %sq = transformer.mul %x, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  // expected-remark @+1 {{is not a scalar constant}}
  %v = transformer.reduce_mean %sq {axes = array<i64: -1>, keepdims = true} : (tensor<?x64xf32>) -> tensor<?x1xf32>
  %ve = transformer.add %v, %e : (tensor<?x1xf32>, tensor<?x1xf32>) -> tensor<?x1xf32>
  %s = transformer.sqrt %ve : (tensor<?x1xf32>) -> tensor<?x1xf32>
  %n = transformer.div %x, %s : (tensor<?x64xf32>, tensor<?x1xf32>) -> tensor<?x64xf32>
  return %n : tensor<?x64xf32>
}
