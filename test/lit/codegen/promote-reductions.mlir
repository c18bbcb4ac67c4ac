// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-promote-reductions | FileCheck %s

// A row sum as convert-linalg-to-parallel-loops writes it: the accumulator
// is loaded once before the loop, carried as an iter_arg, stored once after.
// CHECK-LABEL: func.func @row_sum
// CHECK: scf.parallel (%[[I:.*]]) =
// CHECK: %[[INIT:.*]] = memref.load %[[OUT:.*]][%[[I]]]
// CHECK: %[[R:.*]] = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[INIT]]) -> (f32) {
// CHECK-NEXT: %[[X:.*]] = memref.load %{{.*}}[%[[I]], %{{.*}}]
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[X]], %[[ACC]] : f32
// CHECK-NEXT: scf.yield %[[S]] : f32
// CHECK: memref.store %[[R]], %[[OUT]][%[[I]]]
func.func @row_sum(%in: memref<?x?xf32>, %out: memref<?xf32>, %n: index, %k: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    scf.for %j = %c0 to %k step %c1 {
      %x = memref.load %in[%i, %j] : memref<?x?xf32>
      %a = memref.load %out[%i] : memref<?xf32>
      %s = arith.addf %x, %a : f32
      memref.store %s, %out[%i] : memref<?xf32>
    }
    scf.reduce
  }
  return
}

// -----

// Two accumulators in one loop (a generic with two reduction outputs):
// both promoted.
// CHECK-LABEL: func.func @max_and_sum
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32)
// CHECK-NOT: memref.store
// CHECK: scf.yield
// CHECK-COUNT-2: memref.store
func.func @max_and_sum(%in: memref<?xf32>, %m: memref<f32>, %s: memref<f32>, %k: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %j = %c0 to %k step %c1 {
    %x = memref.load %in[%j] : memref<?xf32>
    %a = memref.load %m[] : memref<f32>
    %b = memref.load %s[] : memref<f32>
    %mx = arith.maximumf %x, %a : f32
    %sm = arith.addf %x, %b : f32
    memref.store %mx, %m[] : memref<f32>
    memref.store %sm, %s[] : memref<f32>
  }
  return
}

// -----

// Negatives: the store's index moves with the loop (a copy, not an
// accumulator); the buffer is read a second time; the body calls out; the
// load comes after the store. All stay as they are.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: iter_args
// CHECK: return
func.func private @opaque(memref<f32>)
func.func @left_alone(%in: memref<?xf32>, %out: memref<?xf32>, %acc: memref<f32>, %k: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %j = %c0 to %k step %c1 {
    %x = memref.load %in[%j] : memref<?xf32>
    %a = memref.load %out[%j] : memref<?xf32>
    %s = arith.addf %x, %a : f32
    memref.store %s, %out[%j] : memref<?xf32>
  }
  scf.for %j = %c0 to %k step %c1 {
    %x = memref.load %in[%j] : memref<?xf32>
    %a = memref.load %acc[] : memref<f32>
    %b = memref.load %acc[] : memref<f32>
    %s = arith.addf %a, %b : f32
    memref.store %s, %acc[] : memref<f32>
  }
  scf.for %j = %c0 to %k step %c1 {
    %a = memref.load %acc[] : memref<f32>
    %x = memref.load %in[%j] : memref<?xf32>
    %s = arith.addf %x, %a : f32
    memref.store %s, %acc[] : memref<f32>
    func.call @opaque(%acc) : (memref<f32>) -> ()
  }
  scf.for %j = %c0 to %k step %c1 {
    %x = memref.load %in[%j] : memref<?xf32>
    memref.store %x, %acc[] : memref<f32>
    %a = memref.load %acc[] : memref<f32>
    %s = arith.addf %x, %a : f32
  }
  return
}
