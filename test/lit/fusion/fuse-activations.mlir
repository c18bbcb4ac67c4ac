// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-fuse-activations{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// TorchScript's erf GELU: x / sqrt(2), erf, + 1, * x, * 0.5.
// CHECK-LABEL: func @gelu_erf_torchscript
// CHECK-NEXT: %[[G:.*]] = transformer.gelu %arg0 :
// CHECK-NEXT: return %[[G]]
func.func @gelu_erf_torchscript(%x: tensor<?x?x64xf32>) -> tensor<?x?x64xf32> {
  %s2 = transformer.constant dense<1.41421354> : tensor<f32>
  %one = transformer.constant dense<1.0> : tensor<f32>
  %half = transformer.constant dense<0.5> : tensor<f32>
  %0 = transformer.div %x, %s2 : (tensor<?x?x64xf32>, tensor<f32>) -> tensor<?x?x64xf32>
  %1 = transformer.erf %0 : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  %2 = transformer.add %1, %one : (tensor<?x?x64xf32>, tensor<f32>) -> tensor<?x?x64xf32>
  %3 = transformer.mul %x, %2 : (tensor<?x?x64xf32>, tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
  %4 = transformer.mul %3, %half : (tensor<?x?x64xf32>, tensor<f32>) -> tensor<?x?x64xf32>
  return %4 : tensor<?x?x64xf32>
}

// -----

// The dynamo spelling: 0.5 * x first, erf(x * 0.70710678), constants [1].
// CHECK-LABEL: func @gelu_erf_dynamo
// CHECK-NEXT: transformer.gelu %arg0 :
func.func @gelu_erf_dynamo(%x: tensor<2x64xf32>) -> tensor<2x64xf32> {
  %r = transformer.constant dense<0.707106769> : tensor<1xf32>
  %one = transformer.constant dense<1.0> : tensor<1xf32>
  %half = transformer.constant dense<0.5> : tensor<1xf32>
  %0 = transformer.mul %x, %half : (tensor<2x64xf32>, tensor<1xf32>) -> tensor<2x64xf32>
  %1 = transformer.mul %x, %r : (tensor<2x64xf32>, tensor<1xf32>) -> tensor<2x64xf32>
  %2 = transformer.erf %1 : (tensor<2x64xf32>) -> tensor<2x64xf32>
  %3 = transformer.add %one, %2 : (tensor<1xf32>, tensor<2x64xf32>) -> tensor<2x64xf32>
  %4 = transformer.mul %0, %3 : (tensor<2x64xf32>, tensor<2x64xf32>) -> tensor<2x64xf32>
  return %4 : tensor<2x64xf32>
}

// -----

// GPT-2's gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
// CHECK-LABEL: func @gelu_tanh_gpt2
// CHECK-NEXT: transformer.gelu %arg0 {approximate = "tanh"}
func.func @gelu_tanh_gpt2(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %three = transformer.constant dense<3.0> : tensor<f32>
  %c = transformer.constant dense<0.044715> : tensor<f32>
  %k = transformer.constant dense<0.797884583> : tensor<f32>
  %one = transformer.constant dense<1.0> : tensor<f32>
  %half = transformer.constant dense<0.5> : tensor<f32>
  %0 = transformer.mul %half, %x : (tensor<f32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %1 = transformer.pow %x, %three : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x64xf32>
  %2 = transformer.mul %c, %1 : (tensor<f32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %3 = transformer.add %x, %2 : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %4 = transformer.mul %k, %3 : (tensor<f32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %5 = transformer.tanh %4 : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %6 = transformer.add %one, %5 : (tensor<f32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %7 = transformer.mul %0, %6 : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %7 : tensor<?x64xf32>
}

// -----

// BLOOM's factored polynomial: x * 0.5 * (1 + tanh(0.79788456 * x * (1 + 0.044715 * x * x))).
// CHECK-LABEL: func @gelu_tanh_bloom
// CHECK-NEXT: transformer.gelu %arg0 {approximate = "tanh"}
func.func @gelu_tanh_bloom(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %c = transformer.constant dense<0.044715> : tensor<f32>
  %k = transformer.constant dense<0.79788456> : tensor<f32>
  %one = transformer.constant dense<1.0> : tensor<f32>
  %half = transformer.constant dense<0.5> : tensor<f32>
  %0 = transformer.mul %x, %k : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x64xf32>
  %1 = transformer.mul %x, %c : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x64xf32>
  %2 = transformer.mul %1, %x : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %3 = transformer.add %2, %one : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x64xf32>
  %4 = transformer.mul %0, %3 : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %5 = transformer.tanh %4 : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %6 = transformer.add %5, %one : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x64xf32>
  %7 = transformer.mul %x, %half : (tensor<?x64xf32>, tensor<f32>) -> tensor<?x64xf32>
  %8 = transformer.mul %7, %6 : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %8 : tensor<?x64xf32>
}

// -----

// SiLU, and the SwiGLU product around it stays a mul.
// CHECK-LABEL: func @silu_swiglu
// CHECK-NEXT: %[[S:.*]] = transformer.silu %arg0
// CHECK-NEXT: transformer.mul %[[S]], %arg1
func.func @silu_swiglu(%g: tensor<?x128xf32>, %u: tensor<?x128xf32>) -> tensor<?x128xf32> {
  %0 = transformer.sigmoid %g : (tensor<?x128xf32>) -> tensor<?x128xf32>
  %1 = transformer.mul %g, %0 : (tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  %2 = transformer.mul %1, %u : (tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  return %2 : tensor<?x128xf32>
}

// -----

// Negative: without the 1/sqrt(2) this is not GELU; the remark says why.
// CHECK-LABEL: func @not_gelu
// CHECK: transformer.erf
// CHECK-NOT: transformer.gelu
func.func @not_gelu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %one = transformer.constant dense<1.0> : tensor<f32>
  %half = transformer.constant dense<0.5> : tensor<f32>
  // expected-remark @+1 {{not fused as gelu or silu: the largest expression of one tensor and scalars around it}}
  %0 = transformer.erf %x : (tensor<4xf32>) -> tensor<4xf32>
  %1 = transformer.add %0, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %2 = transformer.mul %x, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = transformer.mul %2, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return %3 : tensor<4xf32>
}

// -----

// Negative: a sigmoid gate of another tensor (x * sigmoid(y)) is not SiLU.
// CHECK-LABEL: func @sigmoid_gate
// CHECK-NOT: transformer.silu
func.func @sigmoid_gate(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  // expected-remark @+1 {{not fused as gelu or silu}}
  %0 = transformer.sigmoid %y : (tensor<4xf32>) -> tensor<4xf32>
  %1 = transformer.mul %x, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}
