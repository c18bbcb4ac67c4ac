// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-compact-relative-bias{explain=true}))' -verify-diagnostics -mlir-disable-threading | FileCheck %s

// T5's bucketed relative position bias as transformers exports it: the
// bucket of D = range(k)[None, :] - range(q)[:, None] (abs, less, log,
// min with a constant_of_shape of the index's own shape, where), a gather
// from the [buckets, heads] table, transposed and unsqueezed. The bucket is
// computed over the Sq + Sk - 1 differences range(0 - q + 1, k - 0), and
// the attention takes toeplitz of the gathered [1, H, L] rows.
// CHECK-LABEL: func @t5_bias
// CHECK-DAG: %[[ZERO:.*]] = transformer.constant dense<0> : tensor<i64>
// CHECK-DAG: %[[ONE:.*]] = transformer.constant dense<1> : tensor<i64>
// CHECK-DAG: %[[FIFTEEN:.*]] = transformer.constant dense<15> : tensor<i64>
// CHECK-DAG: %[[RQ:.*]] = transformer.range %[[ZERO]], %arg3, %[[ONE]]
// CHECK-DAG: %[[RK:.*]] = transformer.range %[[ZERO]], %arg4, %[[ONE]]
// CHECK: %[[S0:.*]] = transformer.sub %[[ZERO]], %arg3
// CHECK: %[[START:.*]] = transformer.add %[[S0]], %[[ONE]]
// CHECK: %[[LIMIT:.*]] = transformer.sub %arg4, %[[ZERO]]
// CHECK: %[[LQ:.*]] = transformer.shape %[[RQ]] {end = 1 : i64, start = 0 : i64}
// CHECK: %[[LK:.*]] = transformer.shape %[[RK]] {end = 1 : i64, start = 0 : i64}
// CHECK: %[[SIZES:.*]] = transformer.concat %[[LQ]], %[[LK]] {axis = 0 : i64}
// CHECK: %[[D:.*]] = transformer.range %[[START]], %[[LIMIT]], %[[ONE]] : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
// CHECK: %[[ABS:.*]] = transformer.abs %[[D]] : (tensor<?xi64>) -> tensor<?xi64>
// CHECK: transformer.log {{.*}} : (tensor<?xf32>) -> tensor<?xf32>
// CHECK: transformer.min {{.*}}, %[[FIFTEEN]] : (tensor<?xi64>, tensor<i64>) -> tensor<?xi64>
// CHECK: %[[IDX:.*]] = transformer.where {{.*}} : (tensor<?xi1>, tensor<?xi64>, tensor<?xi64>) -> tensor<?xi64>
// CHECK: %[[G:.*]] = transformer.gather %{{.*}}, %[[IDX]] {axis = 0 : i64} : (tensor<32x2xf32>, tensor<?xi64>) -> tensor<?x2xf32>
// CHECK: %[[T:.*]] = transformer.transpose %[[G]] {perm = array<i64: 1, 0>} : (tensor<?x2xf32>) -> tensor<2x?xf32>
// CHECK: %[[U:.*]] = transformer.unsqueeze %[[T]] {axes = array<i64: 0>} : (tensor<2x?xf32>) -> tensor<1x2x?xf32>
// CHECK: %[[B:.*]] = transformer.toeplitz %[[U]], %[[SIZES]] : (tensor<1x2x?xf32>, tensor<2xi64>) -> tensor<1x2x?x?xf32>
// CHECK: transformer.attention %arg0, %arg1, %arg2, %[[B]], %arg5 {scale = 1.000000e+00 : f32}
// CHECK-NOT: tensor<?x?xi64>
func.func @t5_bias(%q: tensor<1x2x?x8xf32>, %k: tensor<1x2x?x8xf32>, %v: tensor<1x2x?x8xf32>, %sq: tensor<i64>, %sk: tensor<i64>, %pad: tensor<1x1x1x?xf32>) -> tensor<1x2x?x8xf32> {
  %table = transformer.constant dense<0.5> : tensor<32x2xf32>
  %c0 = transformer.constant dense<0> : tensor<i64>
  %c1 = transformer.constant dense<1> : tensor<i64>
  %c8 = transformer.constant dense<8> : tensor<i64>
  %f8 = transformer.constant dense<8.0> : tensor<f32>
  %flog = transformer.constant dense<2.77258873> : tensor<f32>
  %rq = transformer.range %c0, %sq, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %rk = transformer.range %c0, %sk, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64>
  %uq = transformer.unsqueeze %rq {axes = array<i64: 1>} : (tensor<?xi64>) -> tensor<?x1xi64>
  %uk = transformer.unsqueeze %rk {axes = array<i64: 0>} : (tensor<?xi64>) -> tensor<1x?xi64>
  %d = transformer.sub %uk, %uq : (tensor<1x?xi64>, tensor<?x1xi64>) -> tensor<?x?xi64>
  %a = transformer.abs %d : (tensor<?x?xi64>) -> tensor<?x?xi64>
  %small = transformer.less %a, %c8 : (tensor<?x?xi64>, tensor<i64>) -> tensor<?x?xi1>
  %af = transformer.cast %a : (tensor<?x?xi64>) -> tensor<?x?xf32>
  %r = transformer.div %af, %f8 : (tensor<?x?xf32>, tensor<f32>) -> tensor<?x?xf32>
  %l = transformer.log %r : (tensor<?x?xf32>) -> tensor<?x?xf32>
  %l2 = transformer.div %l, %flog : (tensor<?x?xf32>, tensor<f32>) -> tensor<?x?xf32>
  %l3 = transformer.mul %l2, %f8 : (tensor<?x?xf32>, tensor<f32>) -> tensor<?x?xf32>
  %li = transformer.cast %l3 : (tensor<?x?xf32>) -> tensor<?x?xi64>
  %large = transformer.add %li, %c8 : (tensor<?x?xi64>, tensor<i64>) -> tensor<?x?xi64>
  %shape = transformer.shape %large {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x?xi64>) -> tensor<2xi64>
  %cap = transformer.constant_of_shape %shape {value = 15 : i64} : (tensor<2xi64>) -> tensor<?x?xi64>
  %capped = transformer.min %large, %cap : (tensor<?x?xi64>, tensor<?x?xi64>) -> tensor<?x?xi64>
  %idx = transformer.where %small, %a, %capped : (tensor<?x?xi1>, tensor<?x?xi64>, tensor<?x?xi64>) -> tensor<?x?xi64>
  %g = transformer.gather %table, %idx {axis = 0 : i64} : (tensor<32x2xf32>, tensor<?x?xi64>) -> tensor<?x?x2xf32>
  %t = transformer.transpose %g {perm = array<i64: 2, 0, 1>} : (tensor<?x?x2xf32>) -> tensor<2x?x?xf32>
  %b = transformer.unsqueeze %t {axes = array<i64: 0>} : (tensor<2x?x?xf32>) -> tensor<1x2x?x?xf32>
  %o = transformer.attention %q, %k, %v, %b, %pad {scale = 1.0 : f32} : (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>, tensor<1x2x?x?xf32>, tensor<1x1x1x?xf32>) -> tensor<1x2x?x8xf32>
  return %o : tensor<1x2x?x8xf32>
}

// -----

// D = rows - cols (a bias indexed by i - j), the query positions starting
// at 3, a torch full_like (an expand of a scalar to the index's shape), and
// static shapes (4 queries, 6 keys): the differences run down from
// q1 - 1 - k0 = 6 to q0 - k1 = -3, in steps of -1 (9 = 4 + 6 - 1 values).
// CHECK-LABEL: func @row_minus_col
// CHECK-DAG: %[[C0:.*]] = transformer.constant dense<0> : tensor<i64>
// CHECK-DAG: %[[C1:.*]] = transformer.constant dense<1> : tensor<i64>
// CHECK-DAG: %[[C3:.*]] = transformer.constant dense<3> : tensor<i64>
// CHECK-DAG: %[[C6:.*]] = transformer.constant dense<6> : tensor<i64>
// CHECK-DAG: %[[C7:.*]] = transformer.constant dense<7> : tensor<i64>
// CHECK-DAG: %[[M1:.*]] = transformer.constant dense<-1> : tensor<i64>
// CHECK: %[[A:.*]] = transformer.sub %[[C7]], %[[C1]]
// CHECK: %[[START:.*]] = transformer.sub %[[A]], %[[C0]]
// CHECK: %[[LIMIT:.*]] = transformer.sub %[[C3]], %[[C6]]
// CHECK: %[[D:.*]] = transformer.range %[[START]], %[[LIMIT]], %[[M1]]
// CHECK: transformer.max %[[D]], %[[C0]] : (tensor<?xi64>, tensor<i64>) -> tensor<?xi64>
// CHECK: %[[B:.*]] = transformer.toeplitz %{{.*}}, %{{.*}} : (tensor<2x?xf32>, tensor<2xi64>) -> tensor<2x4x6xf32>
// CHECK: transformer.attention %arg0, %arg1, %arg2, %[[B]] {scale = 1.000000e+00 : f32}
func.func @row_minus_col(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x6x8xf32>, %v: tensor<1x2x6x8xf32>, %table: tensor<16x2xf32>) -> tensor<1x2x4x8xf32> {
  %c0 = transformer.constant dense<0> : tensor<i64>
  %c1 = transformer.constant dense<1> : tensor<i64>
  %c3 = transformer.constant dense<3> : tensor<i64>
  %c6 = transformer.constant dense<6> : tensor<i64>
  %c7 = transformer.constant dense<7> : tensor<i64>
  %rq = transformer.range %c3, %c7, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<4xi64>
  %rk = transformer.range %c0, %c6, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<6xi64>
  %uq = transformer.unsqueeze %rq {axes = array<i64: -1>} : (tensor<4xi64>) -> tensor<4x1xi64>
  %uk = transformer.unsqueeze %rk {axes = array<i64: 0>} : (tensor<6xi64>) -> tensor<1x6xi64>
  %d = transformer.sub %uq, %uk : (tensor<4x1xi64>, tensor<1x6xi64>) -> tensor<4x6xi64>
  %shape = transformer.shape %d {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<4x6xi64>) -> tensor<2xi64>
  %zeros = transformer.expand %c0, %shape : (tensor<i64>, tensor<2xi64>) -> tensor<4x6xi64>
  %idx = transformer.max %d, %zeros : (tensor<4x6xi64>, tensor<4x6xi64>) -> tensor<4x6xi64>
  %g = transformer.gather %table, %idx {axis = 0 : i64} : (tensor<16x2xf32>, tensor<4x6xi64>) -> tensor<4x6x2xf32>
  %t = transformer.transpose %g {perm = array<i64: 2, 0, 1>} : (tensor<4x6x2xf32>) -> tensor<2x4x6xf32>
  %o = transformer.attention %q, %k, %v, %t {scale = 1.0 : f32} : (tensor<1x2x4x8xf32>, tensor<1x2x6x8xf32>, tensor<1x2x6x8xf32>, tensor<2x4x6xf32>) -> tensor<1x2x4x8xf32>
  return %o : tensor<1x2x4x8xf32>
}

// -----

// Biases that are kept: a range of step 2 (not consecutive positions), an
// index term that varies along one dim only, and a bias whose last two
// dims are the index dims swapped.
// CHECK-LABEL: func @kept
// CHECK-NOT: transformer.toeplitz
func.func @kept(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %table: tensor<16x2xf32>, %col: tensor<1x4xi64>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
  %c0 = transformer.constant dense<0> : tensor<i64>
  %c1 = transformer.constant dense<1> : tensor<i64>
  %c2 = transformer.constant dense<2> : tensor<i64>
  %c4 = transformer.constant dense<4> : tensor<i64>
  %c8 = transformer.constant dense<8> : tensor<i64>
  %r2 = transformer.range %c0, %c8, %c2 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<4xi64>
  %r = transformer.range %c0, %c4, %c1 : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<4xi64>
  %uq = transformer.unsqueeze %r {axes = array<i64: 1>} : (tensor<4xi64>) -> tensor<4x1xi64>
  %uk2 = transformer.unsqueeze %r2 {axes = array<i64: 0>} : (tensor<4xi64>) -> tensor<1x4xi64>
  %uk = transformer.unsqueeze %r {axes = array<i64: 0>} : (tensor<4xi64>) -> tensor<1x4xi64>
  %d2 = transformer.sub %uk2, %uq : (tensor<1x4xi64>, tensor<4x1xi64>) -> tensor<4x4xi64>
  %i2 = transformer.abs %d2 : (tensor<4x4xi64>) -> tensor<4x4xi64>
  %g2 = transformer.gather %table, %i2 {axis = 0 : i64} : (tensor<16x2xf32>, tensor<4x4xi64>) -> tensor<4x4x2xf32>
  %t2 = transformer.transpose %g2 {perm = array<i64: 2, 0, 1>} : (tensor<4x4x2xf32>) -> tensor<2x4x4xf32>
  // expected-remark @+1 {{not fused as a relative position bias: a term of the position index is transformer.unsqueeze, not an elementwise op of the positions and scalars}}
  %o2 = transformer.attention %q, %k, %v, %t2 {scale = 1.0 : f32} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2x4x4xf32>) -> tensor<1x2x4x8xf32>
  %d = transformer.sub %uk, %uq : (tensor<1x4xi64>, tensor<4x1xi64>) -> tensor<4x4xi64>
  %ic = transformer.add %d, %col : (tensor<4x4xi64>, tensor<1x4xi64>) -> tensor<4x4xi64>
  %gc = transformer.gather %table, %ic {axis = 0 : i64} : (tensor<16x2xf32>, tensor<4x4xi64>) -> tensor<4x4x2xf32>
  %tc = transformer.transpose %gc {perm = array<i64: 2, 0, 1>} : (tensor<4x4x2xf32>) -> tensor<2x4x4xf32>
  // expected-remark @+1 {{not fused as a relative position bias: a term of the position index is a function argument, not an elementwise op of the positions and scalars}}
  %oc = transformer.attention %q, %k, %v, %tc {scale = 1.0 : f32} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2x4x4xf32>) -> tensor<1x2x4x8xf32>
  %gs = transformer.gather %table, %d {axis = 0 : i64} : (tensor<16x2xf32>, tensor<4x4xi64>) -> tensor<4x4x2xf32>
  %tsw = transformer.transpose %gs {perm = array<i64: 2, 1, 0>} : (tensor<4x4x2xf32>) -> tensor<2x4x4xf32>
  // expected-remark @+1 {{not fused as a relative position bias: the bias's last two dims are not the gather's two index dims in order}}
  %os = transformer.attention %q, %k, %v, %tsw {scale = 1.0 : f32} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2x4x4xf32>) -> tensor<1x2x4x8xf32>
  return %o2, %oc, %os : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
}
