// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-last-position))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// The LM head's input is sliced to its last position (starts -1, ends
// INT64_MAX on axis 1) before the linear; the result's dims get a seq of 1.
// CHECK-LABEL: func @head
// CHECK-SAME: -> (tensor<?x?x8xf32> {transformer.dims = ["batch", 1, 8], transformer.name = "logits"}, tensor<?x?x4xf32> {transformer.dims = ["batch", "seq", 4], transformer.name = "hidden"})
// CHECK-DAG: %[[S:.*]] = transformer.constant dense<-1> : tensor<1xi64>
// CHECK-DAG: %[[E:.*]] = transformer.constant dense<9223372036854775807> : tensor<1xi64>
// CHECK: %[[X:.*]] = transformer.slice %[[N:.*]], %[[S]], %[[E]] {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<?x?x4xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x4xf32>
// CHECK: %[[L:.*]] = transformer.linear %[[X]], %{{.*}} bias %{{.*}}
// CHECK: return %[[L]], %[[N]]
func.func @head(%h: tensor<?x?x4xf32> {transformer.dims = ["batch", "seq", 4], transformer.name = "x"}) -> (tensor<?x?x8xf32> {transformer.dims = ["batch", "seq", 8], transformer.name = "logits"}, tensor<?x?x4xf32> {transformer.dims = ["batch", "seq", 4], transformer.name = "hidden"}) {
  %s = transformer.constant dense<1.0> : tensor<4xf32>
  %w = transformer.constant dense<0.5> : tensor<4x8xf32>
  %b = transformer.constant dense<0.25> : tensor<8xf32>
  %n = transformer.rms_norm %h, %s {epsilon = 1.0e-6 : f32} : (tensor<?x?x4xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  %l = transformer.linear %n, %w bias %b : (tensor<?x?x4xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return %l, %n : tensor<?x?x8xf32>, tensor<?x?x4xf32>
}

// -----

// Gemma 2's final softcap after the head (div, tanh, mul by a scalar) and
// the unfused form's matmul: the walk passes the elementwise ops, and the
// static seq of 5 becomes 1 through them.
// CHECK-LABEL: func @softcap
// CHECK: %[[X:.*]] = transformer.slice %arg0, {{.*}} -> tensor<2x1x4xf32>
// CHECK: %[[M:.*]] = transformer.matmul %[[X]], %{{.*}} -> tensor<2x1x8xf32>
// CHECK: transformer.div %[[M]], %{{.*}} -> tensor<2x1x8xf32>
// CHECK: transformer.tanh {{.*}} -> tensor<2x1x8xf32>
// CHECK: %[[R:.*]] = transformer.mul {{.*}} -> tensor<2x1x8xf32>
// CHECK: return %[[R]] : tensor<2x1x8xf32>
func.func @softcap(%h: tensor<2x5x4xf32>) -> (tensor<2x5x8xf32> {transformer.dims = [2, 5, 8], transformer.name = "logits"}) {
  %w = transformer.constant dense<0.5> : tensor<4x8xf32>
  %cap = transformer.constant dense<30.0> : tensor<f32>
  %m = transformer.matmul %h, %w : (tensor<2x5x4xf32>, tensor<4x8xf32>) -> tensor<2x5x8xf32>
  %d = transformer.div %m, %cap : (tensor<2x5x8xf32>, tensor<f32>) -> tensor<2x5x8xf32>
  %t = transformer.tanh %d : (tensor<2x5x8xf32>) -> tensor<2x5x8xf32>
  %r = transformer.mul %t, %cap : (tensor<2x5x8xf32>, tensor<f32>) -> tensor<2x5x8xf32>
  return %r : tensor<2x5x8xf32>
}

// -----

// BART's final logits bias, [1, N]: the same at every position.
// CHECK-LABEL: func @bart_bias
// CHECK: %[[X:.*]] = transformer.slice %arg0
// CHECK: %[[L:.*]] = transformer.linear %[[X]]
// CHECK: transformer.add %[[L]], %{{.*}} : (tensor<?x?x8xf32>, tensor<1x8xf32>) -> tensor<?x?x8xf32>
func.func @bart_bias(%h: tensor<?x?x4xf32>) -> (tensor<?x?x8xf32> {transformer.name = "logits"}) {
  %w = transformer.constant dense<0.5> : tensor<4x8xf32>
  %b = transformer.constant dense<0.5> : tensor<1x8xf32>
  %l = transformer.linear %h, %w : (tensor<?x?x4xf32>, tensor<4x8xf32>) -> tensor<?x?x8xf32>
  %a = transformer.add %l, %b : (tensor<?x?x8xf32>, tensor<1x8xf32>) -> tensor<?x?x8xf32>
  return %a : tensor<?x?x8xf32>
}

// -----

// The last layer after its attention: the output projection with its
// residual, the norm, the gated FFN with its residual, the final norm and
// the head. Each takes its operands' last rows; the attention's output and
// the residual stream before it are sliced once each where they are
// defined (the residual stream also feeds the attention, which keeps every
// row).
// CHECK-LABEL: func @last_layer
// CHECK: %[[H0:.*]] = transformer.slice %arg0, {{.*}} {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<?x?x4xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x4xf32>
// CHECK: %[[N1:.*]] = transformer.rms_norm %arg0
// CHECK: %[[A:.*]] = transformer.softmax %[[N1]]
// CHECK: %[[AL:.*]] = transformer.slice %[[A]]
// CHECK: %[[H1:.*]] = transformer.linear %[[AL]], %{{.*}} residual %[[H0]]
// CHECK: %[[N2:.*]] = transformer.rms_norm %[[H1]]
// CHECK: %[[G:.*]] = transformer.linear %[[N2]], %{{.*}} {activation = "silu", gated = true}
// CHECK: %[[H2:.*]] = transformer.linear %[[G]], %{{.*}} residual %[[H1]]
// CHECK: %[[N3:.*]] = transformer.rms_norm %[[H2]]
// CHECK: %[[L:.*]] = transformer.linear %[[N3]]
// CHECK: return %[[L]], %[[A]]
// CHECK-NOT: transformer.slice
func.func @last_layer(%h0: tensor<?x?x4xf32>) -> (tensor<?x?x8xf32> {transformer.name = "logits"}, tensor<?x?x4xf32>) {
  %s = transformer.constant dense<1.0> : tensor<4xf32>
  %wo = transformer.constant dense<0.5> : tensor<4x4xf32>
  %wg = transformer.constant dense<0.5> : tensor<4x12xf32>
  %wd = transformer.constant dense<0.5> : tensor<6x4xf32>
  %wl = transformer.constant dense<0.5> : tensor<4x8xf32>
  %n1 = transformer.rms_norm %h0, %s {epsilon = 1.0e-6 : f32} : (tensor<?x?x4xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  %a = transformer.softmax %n1 {axis = 1 : i64} : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %h1 = transformer.linear %a, %wo residual %h0 : (tensor<?x?x4xf32>, tensor<4x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %n2 = transformer.rms_norm %h1, %s {epsilon = 1.0e-6 : f32} : (tensor<?x?x4xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  %g = transformer.linear %n2, %wg {activation = "silu", gated = true} : (tensor<?x?x4xf32>, tensor<4x12xf32>) -> tensor<?x?x6xf32>
  %h2 = transformer.linear %g, %wd residual %h1 : (tensor<?x?x6xf32>, tensor<6x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %n3 = transformer.rms_norm %h2, %s {epsilon = 1.0e-6 : f32} : (tensor<?x?x4xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  %l = transformer.linear %n3, %wl : (tensor<?x?x4xf32>, tensor<4x8xf32>) -> tensor<?x?x8xf32>
  return %l, %a : tensor<?x?x8xf32>, tensor<?x?x4xf32>
}

// -----

// An operand that varies along seq is sliced too; a value that another
// result reads (the hidden state %h1, returned) stays whole and is sliced
// for the ops after it.
// CHECK-LABEL: func @seq_operand
// CHECK: %[[B:.*]] = transformer.slice %arg1
// CHECK: %[[H1:.*]] = transformer.linear %arg0
// CHECK: %[[X:.*]] = transformer.slice %[[H1]]
// CHECK: %[[L:.*]] = transformer.linear %[[X]]
// CHECK: %[[R:.*]] = transformer.add %[[L]], %[[B]]
// CHECK: return %[[R]], %[[H1]]
func.func @seq_operand(%h: tensor<?x?x4xf32>, %bias: tensor<?x?x8xf32>) -> (tensor<?x?x8xf32> {transformer.name = "logits"}, tensor<?x?x4xf32>) {
  %w = transformer.constant dense<0.5> : tensor<4x4xf32>
  %w2 = transformer.constant dense<0.5> : tensor<4x8xf32>
  %h1 = transformer.linear %h, %w : (tensor<?x?x4xf32>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
  %l = transformer.linear %h1, %w2 : (tensor<?x?x4xf32>, tensor<4x8xf32>) -> tensor<?x?x8xf32>
  %a = transformer.add %l, %bias : (tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return %a, %h1 : tensor<?x?x8xf32>, tensor<?x?x4xf32>
}

// -----

// Negative: the head's product is returned too, so only the tanh after it
// could take the last row: no product would, and nothing changes.
// CHECK-LABEL: func @two_uses
// CHECK-NOT: transformer.slice
func.func @two_uses(%h: tensor<?x?x4xf32>) -> (tensor<?x?x8xf32> {transformer.name = "logits"}, tensor<?x?x8xf32>) {
  %w = transformer.constant dense<0.5> : tensor<4x8xf32>
  %l = transformer.linear %h, %w : (tensor<?x?x4xf32>, tensor<4x8xf32>) -> tensor<?x?x8xf32>
  // expected-warning @+1 {{transfuse-last-position: 'logits' is not computed by a product by a weight and row-wise ops}}
  %t = transformer.tanh %l : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return %t, %l : tensor<?x?x8xf32>, tensor<?x?x8xf32>
}

// -----

// Negative: computed by a softmax over the positions (not row-wise).
// CHECK-LABEL: func @softmax_seq
// CHECK-NOT: transformer.slice
func.func @softmax_seq(%h: tensor<?x?x4xf32>) -> (tensor<?x?x4xf32> {transformer.name = "logits"}) {
  // expected-warning @+1 {{'logits' is not computed by a product by a weight}}
  %s = transformer.softmax %h {axis = 1 : i64} : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  return %s : tensor<?x?x4xf32>
}

// -----

// Negative: no result named logits, and a logits that is not rank 3.
// expected-warning @+1 {{no result named 'logits'}}
func.func @unnamed(%h: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  return %h : tensor<?x?x4xf32>
}

// -----

// expected-warning @+1 {{result 'logits' is not a [batch, seq, N] tensor returned once}}
func.func @rank2(%h: tensor<?x4xf32>) -> (tensor<?x8xf32> {transformer.name = "logits"}) {
  %w = transformer.constant dense<0.5> : tensor<4x8xf32>
  %l = transformer.linear %h, %w : (tensor<?x4xf32>, tensor<4x8xf32>) -> tensor<?x8xf32>
  return %l : tensor<?x8xf32>
}
