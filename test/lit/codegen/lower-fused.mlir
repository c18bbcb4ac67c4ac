// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg | FileCheck %s

// Memory-efficient attention: one loop over blocks of 32 keys carrying the
// row max, row sum and accumulator; the scores live only as [B,H,Sq,block]
// tiles. Both contractions are a linalg.matmul per (batch, head) on 2-D
// slices, in an scf.forall over (batch, head), and grouped K/V heads are
// read at h / 3. The scores read the key block through the transpose-B
// maps of linalg.matmul: K is never copied into K^T.
// CHECK-DAG: #[[MA:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[MBT:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[MC:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func @attention_blocks
// CHECK: %[[BLOCK:.*]] = arith.constant 32 : index
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[BLOCK]] iter_args(%{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (tensor<1x6x?xf32>, tensor<1x6x?xf32>, tensor<1x6x?x16xf32>)
// CHECK: %[[KB:.*]] = tensor.extract_slice %arg1[0, 0, %{{.*}}, 0] [1, 2, %{{.*}}, 16]
// CHECK-NOT: linalg.transpose
// Scores: Q[b, h] x K[b, h / 3]^T.
// CHECK: scf.forall (%[[B:.*]], %[[H:.*]]) in (1, 6) shared_outs(%[[S:.*]] = %{{.*}}) -> (tensor<1x6x?x?xf32>)
// CHECK: %[[KVH:.*]] = arith.divui %[[H]], %{{.*}} : index
// Each head's scores are zeroed right before its product (which the
// microkernel pass turns into a write of C), not the whole block before the
// loop.
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x?xf32>)
// CHECK: %[[Q2:.*]] = tensor.extract_slice %arg0[%[[B]], %[[H]], 0, 0] [1, 1, %{{.*}}, 16] [1, 1, 1, 1] : tensor<1x6x?x16xf32> to tensor<?x16xf32>
// CHECK: %[[K2:.*]] = tensor.extract_slice %[[KB]][%[[B]], %[[KVH]], 0, 0] [1, 1, %{{.*}}, 16] [1, 1, 1, 1] : tensor<1x2x?x16xf32> to tensor<?x16xf32>
// CHECK: linalg.matmul indexing_maps = [#[[MA]], #[[MBT]], #[[MC]]] ins(%[[Q2]], %[[K2]] : tensor<?x16xf32>, tensor<?x16xf32>) outs(%[[Z]] : tensor<?x?xf32>)
// CHECK: scf.forall.in_parallel
// CHECK: tensor.parallel_insert_slice %{{.*}} into %[[S]][%[[B]], %[[H]], 0, 0]
// CHECK: math.exp
// Then P x V into the accumulator.
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<?x?xf32>, tensor<?x16xf32>) outs(%{{.*}} : tensor<?x16xf32>)
// CHECK: scf.yield
// CHECK-NOT: transformer.
func.func @attention_blocks(%q: tensor<1x6x?x16xf32>, %k: tensor<1x2x?x16xf32>) -> tensor<1x6x?x16xf32> {
  %0 = transformer.attention %q, %k, %k {scale = 0.25 : f32, algorithm = "memory_efficient", kv_block = 32 : i64} : (tensor<1x6x?x16xf32>, tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>) -> tensor<1x6x?x16xf32>
  return %0 : tensor<1x6x?x16xf32>
}

// -----

// by_length: the block is all keys while B*H*Sq*Sk*4 fits the budget.
// CHECK-LABEL: func @attention_by_length
// CHECK: %[[BUDGET:.*]] = arith.constant 1024 : index
// CHECK: %[[FITS:.*]] = arith.cmpi ule, %{{.*}}, %[[BUDGET]]
// CHECK: %[[BLOCK:.*]] = arith.select %[[FITS]]
// CHECK: scf.for {{.*}} step %[[BLOCK]]
func.func @attention_by_length(%q: tensor<?x4x?x8xf32>) -> tensor<?x4x?x8xf32> {
  %0 = transformer.attention %q, %q, %q {scale = 1.0 : f32, algorithm = "by_length", max_materialized_bytes = 1024 : i64} : (tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>) -> tensor<?x4x?x8xf32>
  return %0 : tensor<?x4x?x8xf32>
}

// -----

// linear: the f32 product as one 2-D linalg.matmul (which becomes the
// runtime's GEMM after bufferization), then bias + GELU + residual in one
// elementwise pass.
// CHECK-LABEL: func @linear_epilogue
// CHECK: linalg.fill
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: arith.addf
// CHECK: math.erf
// CHECK: arith.addf
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @linear_epilogue(%x: tensor<4x64xf32>, %w: tensor<64x8xf32>, %b: tensor<8xf32>, %r: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = transformer.linear %x, %w bias %b residual %r {activation = "gelu"} : (tensor<4x64xf32>, tensor<64x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// rotary_embedding: one pass; the partner channel and cos/sin are read with
// computed indices, a dynamic cos/sin dim is checked against the input's.
// CHECK-LABEL: func @rotary_partial
// CHECK: call @__transfuse_fail
// CHECK: linalg.generic
// CHECK: arith.minui
// CHECK: arith.xori
// CHECK: tensor.extract
// CHECK: tensor.extract
// CHECK: tensor.extract
// CHECK: arith.select
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @rotary_partial(%x: tensor<2x4x?x16xf32>, %c: tensor<1x1x?x8xf32>) -> tensor<2x4x?x16xf32> {
  %0 = transformer.rotary_embedding %x, %c, %c {rotary_dim = 8 : i64, interleaved = true} : (tensor<2x4x?x16xf32>, tensor<1x1x?x8xf32>, tensor<1x1x?x8xf32>) -> tensor<2x4x?x16xf32>
  return %0 : tensor<2x4x?x16xf32>
}

// -----

// A gated linear: one product of width 2N, then one pass that reads its gate
// and up halves (and the bias halves) as slices and writes N columns.
// CHECK-LABEL: func @linear_gated
// CHECK: linalg.matmul {{.*}} -> tensor<4x16xf32>
// CHECK-COUNT-4: tensor.extract_slice
// CHECK: linalg.generic
// CHECK: arith.negf
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
// CHECK: return {{.*}} : tensor<4x8xf32>
func.func @linear_gated(%x: tensor<4x64xf32>, %w: tensor<64x16xf32>, %b: tensor<16xf32>) -> tensor<4x8xf32> {
  %0 = transformer.linear %x, %w bias %b {activation = "silu", gated = true} : (tensor<4x64xf32>, tensor<64x16xf32>, tensor<16xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// A 3-D input is viewed as [M, K] rows for the one 2-D matmul and the
// product reshaped back.
// CHECK-LABEL: func @linear_rows
// CHECK: tensor.reshape %arg0({{.*}}) : (tensor<?x?x64xf32>, tensor<2xi64>) -> tensor<?x64xf32>
// CHECK: linalg.matmul ins({{.*}} : tensor<?x64xf32>, tensor<64x8xf32>) outs({{.*}} : tensor<?x8xf32>)
// CHECK: tensor.reshape {{.*}} : (tensor<?x8xf32>, tensor<3xi64>) -> tensor<?x?x8xf32>
func.func @linear_rows(%x: tensor<?x?x64xf32>, %w: tensor<64x8xf32>) -> tensor<?x?x8xf32> {
  %0 = transformer.linear %x, %w : (tensor<?x?x64xf32>, tensor<64x8xf32>) -> tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// A residual whose dims the types leave open (it may broadcast at run
// time): the residual having the product's shape is checked first, and
// that branch has its own product and an epilogue with identity maps only,
// which transfuse-cpu-matmul-to-microkernel folds into the GEMM call; the
// other branch takes the broadcasting path straight away (its run-time
// check, operands read with computed indices), with no if of its own.
// CHECK-LABEL: func @linear_residual_may_broadcast
// CHECK: %[[X0:.*]] = tensor.dim %arg0, %c0
// CHECK: %[[D0:.*]] = tensor.dim %arg2, %c0
// CHECK: arith.cmpi eq, %[[D0]], %[[X0]]
// CHECK: %[[IF:.*]] = scf.if %{{.*}} -> (tensor<?x?x8xf32>) {
// CHECK-NOT: __transfuse_fail
// CHECK: linalg.matmul
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-NOT: scf.if
// CHECK: } else {
// CHECK: linalg.matmul
// CHECK: call @__transfuse_fail
// CHECK-NOT: scf.if {{.*}} ->
// CHECK: tensor.extract
// CHECK: scf.yield
// CHECK: return %[[IF]]
func.func @linear_residual_may_broadcast(%x: tensor<?x?x64xf32>, %w: tensor<64x8xf32>, %r: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %0 = transformer.linear %x, %w residual %r : (tensor<?x?x64xf32>, tensor<64x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return %0 : tensor<?x?x8xf32>
}

// -----

// Negative: a residual of the product's static shape needs no check, and
// one that broadcasts for sure (a static 1 against a static 4) has one path.
// CHECK-LABEL: func @linear_residual_settled
// CHECK-NOT: scf.if
// CHECK-COUNT-2: linalg.matmul
// CHECK-NOT: scf.if
// CHECK: return
func.func @linear_residual_settled(%x: tensor<4x64xf32>, %w: tensor<64x8xf32>, %r: tensor<4x8xf32>, %s: tensor<1x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = transformer.linear %x, %w residual %r : (tensor<4x64xf32>, tensor<64x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %1 = transformer.linear %x, %w residual %s : (tensor<4x64xf32>, tensor<64x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// With a weight of dynamic width, the residual's last dim is checked
// against the weight's columns.
// CHECK-LABEL: func @linear_residual_dynamic_width
// CHECK: %[[N:.*]] = tensor.dim %arg1, %c1 : tensor<64x?xf32>
// CHECK: %[[RN:.*]] = tensor.dim %arg2, %c2
// CHECK: arith.cmpi eq, %[[RN]], %[[N]]
// CHECK: scf.if
func.func @linear_residual_dynamic_width(%x: tensor<?x?x64xf32>, %w: tensor<64x?xf32>, %r: tensor<?x?x?xf32>) -> tensor<?x?x?xf32> {
  %0 = transformer.linear %x, %w residual %r : (tensor<?x?x64xf32>, tensor<64x?xf32>, tensor<?x?x?xf32>) -> tensor<?x?x?xf32>
  return %0 : tensor<?x?x?xf32>
}
