// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-parallelize-loops | FileCheck %s

// A 3-D loop: its first two dims become n = 4 * %d outer iterations, which
// the body delinearizes; the last dim stays a sequential loop inside. The
// memref travels as its LLVM descriptor, the index as i64; the constants are
// cloned into the body, not passed.
// CHECK-LABEL: func.func @scale
// CHECK-SAME: (%[[M:.*]]: memref<4x?x8xf32>, %[[D:.*]]: index)
// CHECK: %[[CTX:.*]] = llvm.alloca %{{.*}} x !llvm.struct<(struct<(ptr, ptr, i64, array<3 x i64>, array<3 x i64>)>, i64)>
// CHECK: %[[DESC:.*]] = builtin.unrealized_conversion_cast %[[M]] : memref<4x?x8xf32> to !llvm.struct<(ptr, ptr, i64, array<3 x i64>, array<3 x i64>)>
// CHECK: llvm.store %[[DESC]], %{{.*}}
// CHECK: %[[DI:.*]] = arith.index_cast %[[D]] : index to i64
// CHECK: llvm.store %[[DI]], %{{.*}}
// CHECK: %[[N:.*]] = arith.muli
// CHECK: %[[FN:.*]] = constant @scale_loop : (!llvm.ptr, i64, i64) -> ()
// CHECK: call @transfuse_parallel_loop(%{{.*}}, %{{.*}}, %[[FN]], %[[CTX]])
// CHECK-NOT: scf.parallel
// CHECK: return
// CHECK-LABEL: func.func private @scale_loop
// CHECK-SAME: (%[[P:.*]]: !llvm.ptr, %[[LO:.*]]: i64, %[[HI:.*]]: i64)
// CHECK-SAME: llvm.linkage = #llvm.linkage<internal>
// CHECK: %[[TWO:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: %[[LD:.*]] = llvm.load %{{.*}} : !llvm.ptr -> !llvm.struct<(ptr, ptr, i64, array<3 x i64>, array<3 x i64>)>
// CHECK: %[[MB:.*]] = builtin.unrealized_conversion_cast %[[LD]] : {{.*}} to memref<4x?x8xf32>
// CHECK: scf.for %[[L:.*]] = %{{.*}} to %{{.*}} step
// CHECK: arith.remui %[[L]]
// CHECK: arith.divui %[[L]]
// CHECK: scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step
// CHECK: memref.load %[[MB]]
// CHECK: arith.mulf %{{.*}}, %[[TWO]]
// CHECK: memref.store
func.func @scale(%m: memref<4x?x8xf32>, %d: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %two = arith.constant 2.0 : f32
  scf.parallel (%i, %j, %k) = (%c0, %c0, %c0) to (%c4, %d, %c8) step (%c1, %c1, %c1) {
    %x = memref.load %m[%i, %j, %k] : memref<4x?x8xf32>
    %y = arith.mulf %x, %two : f32
    memref.store %y, %m[%i, %j, %k] : memref<4x?x8xf32>
    scf.reduce
  }
  return
}

// -----

// A 1-D loop is split on its only dim; a nested scf.parallel (and the
// reduction loop in it) stays inside the body, and counts in the work
// estimate: per outer iteration 8 x (4 x 5 + 1) + 1 ops, terminators
// included.
// CHECK-LABEL: func.func @rows
// CHECK: %[[COST:.*]] = arith.constant 169 : index
// CHECK: arith.muli %{{.*}}, %[[COST]]
// CHECK: call @transfuse_parallel_loop
// CHECK-LABEL: func.func private @rows_loop
// CHECK: scf.for
// CHECK: scf.parallel
// CHECK: scf.for
func.func @rows(%m: memref<16x8x4xf32>, %out: memref<16x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  scf.parallel (%i) = (%c0) to (%c16) step (%c1) {
    scf.parallel (%j) = (%c0) to (%c8) step (%c1) {
      scf.for %k = %c0 to %c4 step %c1 {
        %x = memref.load %m[%i, %j, %k] : memref<16x8x4xf32>
        %a = memref.load %out[%i, %j] : memref<16x8xf32>
        %s = arith.addf %a, %x : f32
        memref.store %s, %out[%i, %j] : memref<16x8xf32>
      }
      scf.reduce
    }
    scf.reduce
  }
  return
}

// -----

// A row reduction over [1, 32] rows: its body holds a loop, so both
// parallel dims are linearized (n = 1 x 32) and none stays inside; the only
// loop in an outer iteration is the reduction.
// CHECK-LABEL: func.func @reduce_rows
// CHECK: call @transfuse_parallel_loop
// CHECK-LABEL: func.func private @reduce_rows_loop
// CHECK: scf.for %[[L:.*]] = %{{.*}} to %{{.*}} step
// CHECK: arith.remui %[[L]]
// CHECK-NEXT: arith.divui %[[L]]
// CHECK-NOT: scf.for
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step {{.*}} {
// CHECK-NEXT: memref.load %{{.*}} : memref<1x32x64xf32>
// CHECK-NOT: scf.for
// CHECK: return
func.func @reduce_rows(%m: memref<1x32x64xf32>, %out: memref<1x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c1, %c32) step (%c1, %c1) {
    scf.for %k = %c0 to %c64 step %c1 {
      %x = memref.load %m[%i, %j, %k] : memref<1x32x64xf32>
      %a = memref.load %out[%i, %j] : memref<1x32xf32>
      %s = arith.addf %a, %x : f32
      memref.store %s, %out[%i, %j] : memref<1x32xf32>
    }
    scf.reduce
  }
  return
}

// -----

// Left sequential: a loop that can fail a check (its failure unwinds the
// calling thread), and a loop with a reduction result.
// CHECK-LABEL: func.func @kept
// CHECK-NOT: transfuse_parallel_loop
// CHECK: scf.parallel
// CHECK: call @__transfuse_fail
// CHECK: scf.parallel
// CHECK: scf.reduce(
// CHECK-NOT: transfuse_parallel_loop
// CHECK: return
func.func private @__transfuse_fail(i64)
func.func @kept(%m: memref<16xi64>) -> i64 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %z = arith.constant 0 : i64
  scf.parallel (%i) = (%c0) to (%c16) step (%c1) {
    %x = memref.load %m[%i] : memref<16xi64>
    %bad = arith.cmpi slt, %x, %z : i64
    scf.if %bad {
      %site = arith.constant 3 : i64
      func.call @__transfuse_fail(%site) : (i64) -> ()
    }
    scf.reduce
  }
  %sum = scf.parallel (%i) = (%c0) to (%c16) step (%c1) init (%z) -> i64 {
    %x = memref.load %m[%i] : memref<16xi64>
    scf.reduce(%x : i64) {
    ^bb0(%a: i64, %b: i64):
      %s = arith.addi %a, %b : i64
      scf.reduce.return %s : i64
    }
  }
  return %sum : i64
}
