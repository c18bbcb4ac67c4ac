// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg="attention-kernel=true" -canonicalize | FileCheck %s

// The heads of a merged QKV projection reach the attention kernel without a
// copy. Each slice's reshape [B, S, 32] -> [B, S, 2, 16] keeps the leading
// dims (its target reads them from the shape of the tensor the slice was
// taken from, through the slice: classifyReshape), so it becomes a view
// (tensor.expand_shape, not tensor.reshape, which needs a dense input);
// the kernel reads Q, K and V through transposed views of those, and
// writes its output through a transposed view of the [B, S, 2, 16] buffer
// that the transpose after it would have filled. No transpose is copied.
// CHECK-LABEL: func.func @split_heads
// CHECK-COUNT-3: tensor.expand_shape %{{.*}} {{\[}}[0], [1], [2, 3]] output_shape [%{{.*}}, %{{.*}}, 2, 16] : tensor<?x?x32xf32> into tensor<?x?x2x16xf32>
// CHECK: %[[Q:.*]] = memref.transpose %{{.*}} (d0, d1, d2, d3) -> (d0, d2, d1, d3)
// CHECK: %[[K:.*]] = memref.transpose %{{.*}} (d0, d1, d2, d3) -> (d0, d2, d1, d3)
// CHECK: %[[V:.*]] = memref.transpose %{{.*}} (d0, d1, d2, d3) -> (d0, d2, d1, d3)
// CHECK: %[[Y:.*]] = memref.alloc(%{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<?x?x2x16xf32>
// CHECK: %[[YC:.*]] = memref.cast %[[Y]]
// CHECK: %[[YT:.*]] = memref.transpose %[[YC]] (d0, d1, d2, d3) -> (d0, d2, d1, d3)
// CHECK: %[[O:.*]] = memref.cast %[[YT]]
// CHECK: call @transfuse_attention_f32(%[[Q]], %[[K]], %[[V]], %{{.*}}, %{{.*}}, %[[O]],
// CHECK: %[[T:.*]] = bufferization.to_tensor %[[YC]] restrict writable
// CHECK: %[[R:.*]] = tensor.reshape %[[T]]
// CHECK: return %[[R]]
// CHECK-NOT: linalg.transpose
func.func @split_heads(%qkv: tensor<?x?x96xf32>, %mask: tensor<?x1x1x?xf32>) -> tensor<?x?x32xf32> {
  %i0 = transformer.constant dense<0> : tensor<i64>
  %i1 = transformer.constant dense<1> : tensor<i64>
  %m1 = transformer.constant dense<-1> : tensor<1xi64>
  %d16 = transformer.constant dense<16> : tensor<1xi64>
  %d32 = transformer.constant dense<32> : tensor<1xi64>
  %c0 = transformer.constant dense<0> : tensor<1xi64>
  %c32 = transformer.constant dense<32> : tensor<1xi64>
  %c64 = transformer.constant dense<64> : tensor<1xi64>
  %c96 = transformer.constant dense<96> : tensor<1xi64>
  %shape = transformer.shape %qkv {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x?x96xf32>) -> tensor<3xi64>
  %b = transformer.gather %shape, %i0 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %s = transformer.gather %shape, %i1 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %b1 = transformer.unsqueeze %b {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %s1 = transformer.unsqueeze %s {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %heads = transformer.concat %b1, %s1, %m1, %d16 {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<4xi64>
  %q = transformer.slice %qkv, %c0, %c32 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<?x?x96xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x32xf32>
  %k = transformer.slice %qkv, %c32, %c64 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<?x?x96xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x32xf32>
  %v = transformer.slice %qkv, %c64, %c96 {axes = array<i64: 2>, steps = array<i64: 1>} : (tensor<?x?x96xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<?x?x32xf32>
  %q4 = transformer.reshape %q, %heads {allowzero = false} : (tensor<?x?x32xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
  %k4 = transformer.reshape %k, %heads {allowzero = false} : (tensor<?x?x32xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
  %v4 = transformer.reshape %v, %heads {allowzero = false} : (tensor<?x?x32xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
  %qt = transformer.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x?x16xf32>) -> tensor<?x?x?x16xf32>
  %kt = transformer.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x?x16xf32>) -> tensor<?x?x?x16xf32>
  %vt = transformer.transpose %v4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x?x16xf32>) -> tensor<?x?x?x16xf32>
  %o = transformer.attention %qt, %kt, %vt, %mask {scale = 0.25 : f32, algorithm = "materialized"} : (tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>, tensor<?x1x1x?xf32>) -> tensor<?x?x?x16xf32>
  %ot = transformer.transpose %o {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x?x16xf32>) -> tensor<?x?x?x16xf32>
  %merged = transformer.concat %b1, %s1, %d32 {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<3xi64>
  %out = transformer.reshape %ot, %merged {allowzero = false} : (tensor<?x?x?x16xf32>, tensor<3xi64>) -> tensor<?x?x32xf32>
  return %out : tensor<?x?x32xf32>
}

// -----

// Negative: the reshape's leading dims come from another tensor's shape
// (%other), which nothing proves equal to the slice's: a tensor.reshape
// (checked at run time, copying the strided slice), no expand_shape. The
// kernel still reads the transposed heads through a view. The attention's
// output is returned as well as transposed: written to its own buffer, and
// the transpose after it is a copy.
// CHECK-LABEL: func.func @other_dims
// CHECK-NOT: tensor.expand_shape
// CHECK: tensor.reshape %{{.*}} : (tensor<?x?x32xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
// CHECK: memref.transpose
// CHECK: %[[OUT:.*]] = memref.alloc(%{{.*}}, %{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<?x?x?x16xf32>
// CHECK: %[[OC:.*]] = memref.cast %[[OUT]] : memref<?x?x?x16xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: call @transfuse_attention_f32(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[OC]],
// CHECK: linalg.transpose
func.func @other_dims(%x: tensor<?x?x32xf32>, %other: tensor<?x?x32xf32>, %mask: tensor<?x1x1x?xf32>) -> (tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>) {
  %i0 = transformer.constant dense<0> : tensor<i64>
  %i1 = transformer.constant dense<1> : tensor<i64>
  %m1 = transformer.constant dense<-1> : tensor<1xi64>
  %d16 = transformer.constant dense<16> : tensor<1xi64>
  %shape = transformer.shape %other {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x?x32xf32>) -> tensor<3xi64>
  %b = transformer.gather %shape, %i0 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %s = transformer.gather %shape, %i1 {axis = 0 : i64} : (tensor<3xi64>, tensor<i64>) -> tensor<i64>
  %b1 = transformer.unsqueeze %b {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %s1 = transformer.unsqueeze %s {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %heads = transformer.concat %b1, %s1, %m1, %d16 {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<4xi64>
  %x4 = transformer.reshape %x, %heads {allowzero = false} : (tensor<?x?x32xf32>, tensor<4xi64>) -> tensor<?x?x?x16xf32>
  %xt = transformer.transpose %x4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x?x16xf32>) -> tensor<?x?x?x16xf32>
  %o = transformer.attention %xt, %xt, %xt, %mask {scale = 0.25 : f32, algorithm = "materialized"} : (tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>, tensor<?x1x1x?xf32>) -> tensor<?x?x?x16xf32>
  %ot = transformer.transpose %o {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x?x16xf32>) -> tensor<?x?x?x16xf32>
  return %o, %ot : tensor<?x?x?x16xf32>, tensor<?x?x?x16xf32>
}

// -----

// A reshape of the attention's output to its own shape (the BERT export's
// view before the transpose; the target reads the batch from the output
// and the length from the query, -1 for the heads) is the identity and
// goes, so the transpose is the output's only reader.
// CHECK-LABEL: func.func @identity_view
// CHECK-NOT: tensor.reshape
// CHECK: memref.transpose
// CHECK: call @transfuse_attention_f32
// CHECK-NOT: linalg.transpose
// CHECK: return
func.func @identity_view(%q: tensor<?x2x?x16xf32>) -> tensor<?x?x2x16xf32> {
  %i0 = transformer.constant dense<0> : tensor<i64>
  %i2 = transformer.constant dense<2> : tensor<i64>
  %m1 = transformer.constant dense<-1> : tensor<1xi64>
  %d16 = transformer.constant dense<16> : tensor<1xi64>
  %o = transformer.attention %q, %q, %q {scale = 0.25 : f32, algorithm = "materialized"} : (tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32>
  %so = transformer.shape %o {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x2x?x16xf32>) -> tensor<4xi64>
  %sq = transformer.shape %q {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x2x?x16xf32>) -> tensor<4xi64>
  %b = transformer.gather %so, %i0 {axis = 0 : i64} : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %l = transformer.gather %sq, %i2 {axis = 0 : i64} : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
  %b1 = transformer.unsqueeze %b {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %l1 = transformer.unsqueeze %l {axes = array<i64: 0>} : (tensor<i64>) -> tensor<1xi64>
  %target = transformer.concat %b1, %m1, %l1, %d16 {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<4xi64>
  %same = transformer.reshape %o, %target {allowzero = false} : (tensor<?x2x?x16xf32>, tensor<4xi64>) -> tensor<?x2x?x16xf32>
  %t = transformer.transpose %same {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x2x?x16xf32>) -> tensor<?x?x2x16xf32>
  return %t : tensor<?x?x2x16xf32>
}
