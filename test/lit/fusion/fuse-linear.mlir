// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-fuse-linear{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// BERT's intermediate and output blocks: bias, GELU and the residual add all
// join the GEMM's epilogue.
// CHECK-LABEL: func @bias_gelu_residual
// CHECK-NEXT: %[[L:.*]] = transformer.linear %arg0, %arg1 bias %arg2 residual %arg3 {activation = "gelu"}
// CHECK-NEXT: return %[[L]]
func.func @bias_gelu_residual(%x: tensor<?x?x64xf32>, %w: tensor<64x128xf32>, %b: tensor<128xf32>, %r: tensor<?x?x128xf32>) -> tensor<?x?x128xf32> {
  %0 = transformer.matmul %x, %w : (tensor<?x?x64xf32>, tensor<64x128xf32>) -> tensor<?x?x128xf32>
  %1 = transformer.add %b, %0 : (tensor<128xf32>, tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  %2 = transformer.gelu %1 : (tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  %3 = transformer.add %2, %r : (tensor<?x?x128xf32>, tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  return %3 : tensor<?x?x128xf32>
}

// -----

// A bias used twice stops the epilogue at the product.
// CHECK-LABEL: func @shared_product
// CHECK: transformer.linear %arg0, %arg1 :
// CHECK-NOT: activation
func.func @shared_product(%x: tensor<4x64xf32>, %w: tensor<64x8xf32>, %b: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = transformer.matmul %x, %w : (tensor<4x64xf32>, tensor<64x8xf32>) -> tensor<4x8xf32>
  %1 = transformer.add %0, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Negative: a batched product of two activations (no weight matrix).
// CHECK-LABEL: func @batched
// CHECK: transformer.matmul
func.func @batched(%a: tensor<2x4x8xf32>, %b: tensor<2x8x4xf32>) -> tensor<2x4x4xf32> {
  // expected-remark @+1 {{not fused as linear: its right operand is not a 2-D matrix}}
  %0 = transformer.matmul %a, %b : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
  return %0 : tensor<2x4x4xf32>
}

// -----

// GPT-2's MLP: the exporter's Gemm (imported as a linear with its bias) on
// [B*S, E], a reshape back to [B, S, 4E], then GELU. The linear takes the
// activation; the reshape follows it.
// CHECK-LABEL: func @gemm_reshape_gelu
// CHECK-NEXT: %[[L:.*]] = transformer.linear %arg0, %arg1 bias %arg2 {activation = "gelu_tanh"}
// CHECK-NEXT: %[[R:.*]] = transformer.reshape %[[L]], %arg3
// CHECK-NEXT: return %[[R]]
func.func @gemm_reshape_gelu(%x: tensor<?x64xf32>, %w: tensor<64x256xf32>, %b: tensor<256xf32>, %s: tensor<3xi64>) -> tensor<?x?x256xf32> {
  %0 = transformer.linear %x, %w bias %b : (tensor<?x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<?x256xf32>
  %1 = transformer.reshape %0, %s {allowzero = false} : (tensor<?x256xf32>, tensor<3xi64>) -> tensor<?x?x256xf32>
  %2 = transformer.gelu %1 {approximate = "tanh"} : (tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  return %2 : tensor<?x?x256xf32>
}

// -----

// The same without the reshape (a 2-D model's Gemm then Relu).
// CHECK-LABEL: func @gemm_relu
// CHECK-NEXT: %[[L:.*]] = transformer.linear %arg0, %arg1 bias %arg2 {activation = "relu"}
// CHECK-NEXT: return %[[L]]
func.func @gemm_relu(%x: tensor<4x64xf32>, %w: tensor<64x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %0 = transformer.linear %x, %w bias %b : (tensor<4x64xf32>, tensor<64x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %1 = transformer.relu %0 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// Negative: the reshaped product is read elsewhere too, the linear has an
// activation already, or it is a gated unit (whose activation applies to
// its gate alone): the activation stays on its own.
// CHECK-LABEL: func @reshape_read_twice
// CHECK: transformer.linear %arg0, %arg1 bias %arg2 :
// CHECK: transformer.silu
// CHECK: transformer.linear %arg0, %arg1 {activation = "relu"}
// CHECK: transformer.gelu
// CHECK: transformer.linear %arg0, %arg1 {gated = true}
// CHECK: transformer.relu
func.func @reshape_read_twice(%x: tensor<?x64xf32>, %w: tensor<64x256xf32>, %b: tensor<256xf32>, %s: tensor<3xi64>) -> (tensor<?x?x256xf32>, tensor<?x?x256xf32>, tensor<?x256xf32>, tensor<?x128xf32>) {
  %0 = transformer.linear %x, %w bias %b : (tensor<?x64xf32>, tensor<64x256xf32>, tensor<256xf32>) -> tensor<?x256xf32>
  %1 = transformer.reshape %0, %s {allowzero = false} : (tensor<?x256xf32>, tensor<3xi64>) -> tensor<?x?x256xf32>
  %2 = transformer.silu %1 : (tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  %3 = transformer.linear %x, %w {activation = "relu"} : (tensor<?x64xf32>, tensor<64x256xf32>) -> tensor<?x256xf32>
  %4 = transformer.gelu %3 : (tensor<?x256xf32>) -> tensor<?x256xf32>
  %5 = transformer.linear %x, %w {gated = true} : (tensor<?x64xf32>, tensor<64x256xf32>) -> tensor<?x128xf32>
  %6 = transformer.relu %5 : (tensor<?x128xf32>) -> tensor<?x128xf32>
  return %1, %2, %4, %6 : tensor<?x?x256xf32>, tensor<?x?x256xf32>, tensor<?x256xf32>, tensor<?x128xf32>
}
