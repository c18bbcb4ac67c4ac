// RUN: transfuse-opt %s -split-input-file -allow-unregistered-dialect -transfuse-cpu-check-refined-casts | FileCheck %s

// A cast that makes a dynamic size static (as linalg's canonicalization
// leaves them, from an op's other operand) gets a run-time check of that
// size before it, naming the cast's ONNX node; its static and already
// dynamic dims get none.
// CHECK: module attributes {transfuse.fail_sites = ["node 'node_Gemm (Gemm)': dim 0 of an operand is not 352, the size another operand of the op gives it"]}
// CHECK-LABEL: func.func @refined
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[D:.*]] = tensor.dim %arg0, %[[C0]] : tensor<?x?x8xf32>
// CHECK: %[[OK:.*]] = arith.cmpi eq, %[[D]], %{{.*}} : index
// CHECK: %[[BAD:.*]] = arith.xori %[[OK]], %{{.*}} : i1
// CHECK: scf.if %[[BAD]] {
// CHECK: func.call @__transfuse_fail(%{{.*}}) : (i64) -> ()
// CHECK: }
// CHECK-NOT: tensor.dim
// CHECK: tensor.cast %arg0 : tensor<?x?x8xf32> to tensor<352x?x8xf32>
func.func private @__transfuse_fail(i64)
func.func @refined(%a: tensor<?x?x8xf32>) -> tensor<352x?x8xf32> {
  %c = tensor.cast %a : tensor<?x?x8xf32> to tensor<352x?x8xf32> loc("node_Gemm (Gemm)")
  return %c : tensor<352x?x8xf32>
}

// -----

// Negative: a cast to a dynamic size, and one inside a loop (a check there
// would keep the loop from going parallel), get no check.
// CHECK-LABEL: func.func @unrefined
// CHECK-NOT: __transfuse_fail(
// CHECK-NOT: tensor.dim
// CHECK: return
func.func private @__transfuse_fail(i64)
func.func @unrefined(%a: tensor<4x8xf32>, %b: tensor<?xf32>, %n: index) -> tensor<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c = tensor.cast %a : tensor<4x8xf32> to tensor<?x8xf32>
  scf.for %i = %c0 to %n step %c1 {
    %s = tensor.cast %b : tensor<?xf32> to tensor<16xf32>
    "test.use"(%s) : (tensor<16xf32>) -> ()
  }
  return %c : tensor<?x8xf32>
}
