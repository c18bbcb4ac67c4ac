// RUN: transfuse-opt %s | transfuse-opt | FileCheck %s
// Graph ops print and parse back, with symbolic (?) batch and sequence dims.

// CHECK-LABEL: func @elementwise
func.func @elementwise(%a: tensor<?x?x88xf32>, %b: tensor<88xf32>, %m: tensor<?x1x1x?xi1>) -> tensor<?x?x88xf32> {
  // CHECK: transformer.add %{{.*}}, %{{.*}} : (tensor<?x?x88xf32>, tensor<88xf32>) -> tensor<?x?x88xf32>
  %0 = transformer.add %a, %b : (tensor<?x?x88xf32>, tensor<88xf32>) -> tensor<?x?x88xf32>
  // CHECK: transformer.erf
  %1 = transformer.erf %0 : (tensor<?x?x88xf32>) -> tensor<?x?x88xf32>
  // CHECK: transformer.cast %{{.*}} : (tensor<?x1x1x?xi1>) -> tensor<?x1x1x?xf32>
  %2 = transformer.cast %m : (tensor<?x1x1x?xi1>) -> tensor<?x1x1x?xf32>
  return %1 : tensor<?x?x88xf32>
}

// CHECK-LABEL: func @structural
func.func @structural(%x: tensor<?x?x88xf32>, %ids: tensor<?x?xi64>, %w: tensor<1000x88xf32>) -> tensor<?x4x?x22xf32> {
  // CHECK: transformer.gather {{.*}} {axis = 0 : i64}
  %e = transformer.gather %w, %ids {axis = 0 : i64} : (tensor<1000x88xf32>, tensor<?x?xi64>) -> tensor<?x?x88xf32>
  %s = transformer.constant dense<[0, 0, 4, 22]> : tensor<4xi64>
  // CHECK: transformer.reshape {{.*}} {allowzero = false}
  %r = transformer.reshape %e, %s {allowzero = false} : (tensor<?x?x88xf32>, tensor<4xi64>) -> tensor<?x?x4x22xf32>
  // CHECK: transformer.transpose {{.*}} {perm = array<i64: 0, 2, 1, 3>}
  %t = transformer.transpose %r {perm = array<i64: 0, 2, 1, 3>} : (tensor<?x?x4x22xf32>) -> tensor<?x4x?x22xf32>
  // CHECK: transformer.softmax {{.*}} {axis = -1 : i64}
  %sm = transformer.softmax %t {axis = -1 : i64} : (tensor<?x4x?x22xf32>) -> tensor<?x4x?x22xf32>
  return %sm : tensor<?x4x?x22xf32>
}

// CHECK-LABEL: func @shapes
func.func @shapes(%x: tensor<?x?x88xf32>) -> tensor<3xi64> {
  // CHECK: transformer.shape {{.*}} {end = 9223372036854775807 : i64, start = 0 : i64}
  %0 = transformer.shape %x {end = 9223372036854775807 : i64, start = 0 : i64} : (tensor<?x?x88xf32>) -> tensor<3xi64>
  return %0 : tensor<3xi64>
}

// CHECK-LABEL: func @toeplitz
func.func @toeplitz(%d: tensor<1x12x?xf32>, %s: tensor<2xi64>) -> tensor<1x12x?x?xf32> {
  // CHECK: transformer.toeplitz %arg0, %arg1 : (tensor<1x12x?xf32>, tensor<2xi64>) -> tensor<1x12x?x?xf32>
  %0 = transformer.toeplitz %d, %s : (tensor<1x12x?xf32>, tensor<2xi64>) -> tensor<1x12x?x?xf32>
  return %0 : tensor<1x12x?x?xf32>
}

// CHECK-LABEL: func @matmul_broadcast
func.func @matmul_broadcast(%q: tensor<?x4x?x22xf32>, %k: tensor<?x4x22x?xf32>, %v: tensor<88x88xf32>, %h: tensor<?x?x88xf32>) -> tensor<?x?x88xf32> {
  // CHECK: transformer.matmul {{.*}} -> tensor<?x4x?x?xf32>
  %0 = transformer.matmul %q, %k : (tensor<?x4x?x22xf32>, tensor<?x4x22x?xf32>) -> tensor<?x4x?x?xf32>
  // CHECK: transformer.matmul {{.*}} -> tensor<?x?x88xf32>
  %1 = transformer.matmul %h, %v : (tensor<?x?x88xf32>, tensor<88x88xf32>) -> tensor<?x?x88xf32>
  return %1 : tensor<?x?x88xf32>
}

// Fused ops, with their optional operands and results.
// CHECK-LABEL: func @fused
func.func @fused(%x: tensor<?x?x64xf32>, %r: tensor<?x?x64xf32>, %g: tensor<64xf32>, %w: tensor<64x128xf32>, %b: tensor<128xf32>, %q: tensor<?x6x?x16xf32>, %k: tensor<?x2x?x16xf32>, %m: tensor<?x1x1x?xf32>, %c: tensor<1x1x?x8xf32>) -> tensor<?x6x?x16xf32> {
  // CHECK: transformer.layer_norm %{{.*}} residual %{{.*}} scale %{{.*}} bias %{{.*}} {epsilon
  %n:2 = transformer.layer_norm %x residual %r scale %g bias %g {epsilon = 1.0e-5 : f32} : (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>)
  // CHECK: transformer.rms_norm
  %s = transformer.rms_norm %n#0, %g {epsilon = 1.0e-6 : f32} : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  // CHECK: transformer.linear %{{.*}}, %{{.*}} bias %{{.*}} {activation = "gelu_tanh"}
  %l = transformer.linear %s, %w bias %b {activation = "gelu_tanh"} : (tensor<?x?x64xf32>, tensor<64x128xf32>, tensor<128xf32>) -> tensor<?x?x128xf32>
  // CHECK: transformer.silu
  %a = transformer.silu %l : (tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  // CHECK: transformer.gelu {{.*}} {approximate = "tanh"}
  %ge = transformer.gelu %a {approximate = "tanh"} : (tensor<?x?x128xf32>) -> tensor<?x?x128xf32>
  // CHECK: transformer.rotary_embedding {{.*}} {interleaved = true, rotary_dim = 8 : i64}
  %qr = transformer.rotary_embedding %q, %c, %c {rotary_dim = 8 : i64, interleaved = true} : (tensor<?x6x?x16xf32>, tensor<1x1x?x8xf32>, tensor<1x1x?x8xf32>) -> tensor<?x6x?x16xf32>
  // CHECK: transformer.attention {{.*}} {algorithm = "memory_efficient", kv_block = 32 : i64, scale = 2.500000e-01 : f32}
  %o = transformer.attention %qr, %k, %k, %m {scale = 0.25 : f32, algorithm = "memory_efficient", kv_block = 32 : i64} : (tensor<?x6x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x1x1x?xf32>) -> tensor<?x6x?x16xf32>
  return %o : tensor<?x6x?x16xf32>
}

// CHECK-LABEL: func @kv_cache_update
func.func @kv_cache_update(%p: tensor<?x2x?x16xf32>, %u: tensor<?x2x?x16xf32>, %l: tensor<?xi64>, %t: tensor<i64>) -> tensor<?x2x?x16xf32> {
  // CHECK: transformer.kv_cache_update %arg0, %arg1, %arg2, %arg3 : (tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>, tensor<i64>) -> tensor<?x2x?x16xf32>
  %0 = transformer.kv_cache_update %p, %u, %l, %t : (tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>, tensor<i64>) -> tensor<?x2x?x16xf32>
  return %0 : tensor<?x2x?x16xf32>
}
