// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-merge-projections{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// Q, K and V projections of one input share one GEMM; the weights and biases
// are concatenated column-wise at compile time ([[1,2],[3,4]] | [[5],[6]] |
// [[7],[8]] gives [[1,2,5,7],[3,4,6,8]]) and each result is a slice.
// CHECK-LABEL: func @qkv
// CHECK-DAG: %[[W:.*]] = transformer.constant dense_resource<merged> : tensor<2x4xf32>
// CHECK-DAG: %[[B:.*]] = transformer.constant dense_resource<merged{{.*}}> : tensor<4xf32>
// CHECK: %[[L:.*]] = transformer.linear %arg0, %[[W]] bias %[[B]] : (tensor<?x?x2xf32>, tensor<2x4xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
// CHECK: %[[Q:.*]] = transformer.slice %[[L]], {{.*}} -> tensor<?x?x2xf32>
// CHECK: %[[K:.*]] = transformer.slice %[[L]], {{.*}} -> tensor<?x?x1xf32>
// CHECK: %[[V:.*]] = transformer.slice %[[L]], {{.*}} -> tensor<?x?x1xf32>
// CHECK-NOT: transformer.linear
// CHECK: return %[[Q]], %[[K]], %[[V]]
// CHECK: merged: "0x{{[0-9A-F]+}}0000803F000000400000A0400000E04000004040000080400000C04000000041"
// CHECK: merged_1: "0x{{[0-9A-F]+}}0000003F0000803E0000C03F00002040"
func.func @qkv(%x: tensor<?x?x2xf32>) -> (tensor<?x?x2xf32>, tensor<?x?x1xf32>, tensor<?x?x1xf32>) {
  %wq = transformer.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %wk = transformer.constant dense<[[5.0], [6.0]]> : tensor<2x1xf32>
  %wv = transformer.constant dense<[[7.0], [8.0]]> : tensor<2x1xf32>
  %bq = transformer.constant dense<[0.5, 0.25]> : tensor<2xf32>
  %bk = transformer.constant dense<[1.5]> : tensor<1xf32>
  %bv = transformer.constant dense<[2.5]> : tensor<1xf32>
  %q = transformer.linear %x, %wq bias %bq : (tensor<?x?x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x?x2xf32>
  %k = transformer.linear %x, %wk bias %bk : (tensor<?x?x2xf32>, tensor<2x1xf32>, tensor<1xf32>) -> tensor<?x?x1xf32>
  %v = transformer.linear %x, %wv bias %bv : (tensor<?x?x2xf32>, tensor<2x1xf32>, tensor<1xf32>) -> tensor<?x?x1xf32>
  return %q, %k, %v : tensor<?x?x2xf32>, tensor<?x?x1xf32>, tensor<?x?x1xf32>
}

// -----

// LLaMA's SwiGLU: silu(x @ Wg) * (x @ Wu) becomes one gated linear over
// [Wg | Wu], in either operand order of the Mul.
// CHECK-LABEL: func @swiglu
// CHECK: %[[W:.*]] = transformer.constant dense_resource<merged> : tensor<4x6xf32>
// CHECK-NEXT: %[[L:.*]] = transformer.linear %arg0, %[[W]] {activation = "silu", gated = true} : (tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x3xf32>
// CHECK-NEXT: return %[[L]]
func.func @swiglu(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %wg = transformer.constant dense<1.0> : tensor<4x3xf32>
  %wu = transformer.constant dense<2.0> : tensor<4x3xf32>
  %g = transformer.linear %x, %wg {activation = "silu"} : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %u = transformer.linear %x, %wu : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  %m = transformer.mul %u, %g : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
  return %m : tensor<?x3xf32>
}

// -----

// GLM: one gate_up projection chunked in two halves; the chunking and the
// activation join its epilogue (the weight need not be a constant).
// CHECK-LABEL: func @chunked_gate_up
// CHECK-NEXT: %[[L:.*]] = transformer.linear %arg0, %arg1 {activation = "gelu", gated = true} : (tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x3xf32>
// CHECK-NEXT: return %[[L]]
func.func @chunked_gate_up(%x: tensor<?x4xf32>, %w: tensor<4x6xf32>) -> tensor<?x3xf32> {
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c3 = transformer.constant dense<3> : tensor<1xi64>
  %c6 = transformer.constant dense<6> : tensor<1xi64>
  %y = transformer.linear %x, %w : (tensor<?x4xf32>, tensor<4x6xf32>) -> tensor<?x6xf32>
  %a = transformer.slice %y, %c0, %c3 {axes = array<i64: 1>, steps = array<i64: 1>} : (tensor<?x6xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x3xf32>
  %b = transformer.slice %y, %c3, %c6 {axes = array<i64: -1>, steps = array<i64: 1>} : (tensor<?x6xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x3xf32>
  %g = transformer.gelu %a : (tensor<?x3xf32>) -> tensor<?x3xf32>
  %m = transformer.mul %b, %g : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
  return %m : tensor<?x3xf32>
}

// -----

// Negative: a weight known only at run time cannot be concatenated.
// CHECK-LABEL: func @runtime_weights
// CHECK-COUNT-2: transformer.linear
func.func @runtime_weights(%x: tensor<?x4xf32>, %w1: tensor<4x3xf32>, %w2: tensor<4x3xf32>) -> (tensor<?x3xf32>, tensor<?x3xf32>) {
  // expected-remark @+1 {{not fused as a merged projection: its weight is not a compile-time constant}}
  %a = transformer.linear %x, %w1 : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  // expected-remark @+1 {{not fused as a merged projection: its weight is not a compile-time constant}}
  %b = transformer.linear %x, %w2 : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  return %a, %b : tensor<?x3xf32>, tensor<?x3xf32>
}

// -----

// Negative: both halves activated is not a gated unit, and projections with
// an activation do not share a GEMM.
// CHECK-LABEL: func @both_activated
// CHECK-COUNT-2: transformer.linear
// CHECK: transformer.mul
func.func @both_activated(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %w1 = transformer.constant dense<1.0> : tensor<4x3xf32>
  %w2 = transformer.constant dense<2.0> : tensor<4x3xf32>
  // expected-remark @+1 {{not fused as a merged projection: it has an activation}}
  %a = transformer.linear %x, %w1 {activation = "silu"} : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  // expected-remark @+1 {{not fused as a merged projection: it has an activation}}
  %b = transformer.linear %x, %w2 {activation = "relu"} : (tensor<?x4xf32>, tensor<4x3xf32>) -> tensor<?x3xf32>
  // expected-remark @+1 {{not fused as a merged projection: exactly one of the two projections must have an activation}}
  %m = transformer.mul %a, %b : (tensor<?x3xf32>, tensor<?x3xf32>) -> tensor<?x3xf32>
  return %m : tensor<?x3xf32>
}
