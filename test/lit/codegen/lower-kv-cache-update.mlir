// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg | FileCheck %s

// A GroupQueryAttention's present: per sequence (a loop over the batch),
// the past's first p rows, the update's n = min(S, T - p) rows after them
// and zeros in the rest, each an insert_slice of whole rows into the
// result (copies once bufferized; no index tensor, no gather). The
// lengths are checked at run time: the operands' batch, heads and head
// size agree, T is not negative, and 0 <= p <= P.
// CHECK-LABEL: func @present
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C2:.*]] = arith.constant 2 : index
// CHECK: %[[B:.*]] = tensor.dim %arg0, %[[C0]]
// CHECK: %[[P:.*]] = tensor.dim %arg0, %[[C2]]
// CHECK: %[[S:.*]] = tensor.dim %arg1, %[[C2]]
// CHECK: scf.if
// CHECK: %[[T:.*]] = arith.index_cast
// CHECK: arith.cmpi sge, %[[T]], %[[C0]]
// CHECK: %[[EMPTY:.*]] = tensor.empty(%[[B]], %[[T]]) : tensor<?x2x?x16xf32>
// CHECK: scf.for %[[I:.*]] = %[[C0]] to %[[B]] {{.*}} iter_args(%[[ACC:.*]] = %[[EMPTY]])
// CHECK: %[[LEN:.*]] = tensor.extract %arg2[%[[I]]]
// CHECK: %[[PB:.*]] = arith.index_cast %[[LEN]]
// CHECK: arith.cmpi sle, %[[PB]], %[[P]]
// CHECK: %[[PC:.*]] = arith.minsi %[[PB]], %[[T]]
// CHECK: %[[LEFT:.*]] = arith.subi %[[T]], %[[PC]]
// CHECK: %[[N:.*]] = arith.minsi %[[S]], %[[LEFT]]
// CHECK: %[[PAST:.*]] = tensor.extract_slice %arg0[%[[I]], 0, 0, 0] [1, 2, %[[PC]], 16] [1, 1, 1, 1]
// CHECK: %[[A1:.*]] = tensor.insert_slice %[[PAST]] into %[[ACC]][%[[I]], 0, 0, 0] [1, 2, %[[PC]], 16] [1, 1, 1, 1]
// CHECK: %[[NEW:.*]] = tensor.extract_slice %arg1[%[[I]], 0, 0, 0] [1, 2, %[[N]], 16] [1, 1, 1, 1]
// CHECK: %[[A2:.*]] = tensor.insert_slice %[[NEW]] into %[[A1]][%[[I]], 0, %[[PC]], 0] [1, 2, %[[N]], 16] [1, 1, 1, 1]
// The zeros are filled into the result's own rows (in place once
// bufferized: no buffer of zeros to copy).
// CHECK: %[[ROWS:.*]] = tensor.extract_slice %[[A2]][%[[I]], 0, %[[AFTER:.*]], 0]
// CHECK: %[[ZEROS:.*]] = linalg.fill ins({{.*}}) outs(%[[ROWS]]
// CHECK: %[[A3:.*]] = tensor.insert_slice %[[ZEROS]] into %[[A2]][%[[I]], 0, %[[AFTER]], 0]
// CHECK: scf.yield %[[A3]]
// CHECK-NOT: tensor.extract %arg0
// CHECK-NOT: transformer.kv_cache_update
func.func @present(%p: tensor<?x2x?x16xf32>, %u: tensor<?x2x?x16xf32>, %l: tensor<?xi64>, %t: tensor<i64>) -> tensor<?x2x?x16xf32> {
  %0 = transformer.kv_cache_update %p, %u, %l, %t : (tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?xi64>, tensor<i64>) -> tensor<?x2x?x16xf32>
  return %0 : tensor<?x2x?x16xf32>
}

// -----

// A past whose type says it is empty (a first prompt's zero-length
// cache) gives no past slice: a slice of a 0-long dim does not verify.
// CHECK-LABEL: func @empty_past
// CHECK: scf.for
// CHECK-NOT: tensor.extract_slice %arg0
// CHECK: tensor.extract_slice %arg1
// CHECK: scf.yield
func.func @empty_past(%p: tensor<2x2x0x16xf32>, %u: tensor<2x2x5x16xf32>, %l: tensor<2xi64>, %t: tensor<i64>) -> tensor<2x2x?x16xf32> {
  %0 = transformer.kv_cache_update %p, %u, %l, %t : (tensor<2x2x0x16xf32>, tensor<2x2x5x16xf32>, tensor<2xi64>, tensor<i64>) -> tensor<2x2x?x16xf32>
  return %0 : tensor<2x2x?x16xf32>
}
