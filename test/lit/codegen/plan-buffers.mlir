// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-plan-buffers | FileCheck %s

// Three buffers of static size freed in the entry block share one arena.
// Largest first: %a at 0; %c, allocated after %a is freed, reuses offset 0;
// %b (400 bytes), live beside both, goes at 1024. The arena is 1424 bytes
// rounded up to 64, freed before the return; the buffers' deallocs go.
// CHECK: module attributes {transfuse.memory_plan = array<i64: 1472, 3, 0>}
// CHECK-LABEL: func.func @main_graph
// CHECK-SAME: transfuse.arena_bytes = 1472
// CHECK: %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<1472xi8>
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[A:.*]] = memref.view %[[ARENA]][%[[C0]]][] : memref<1472xi8> to memref<256xf32>
// CHECK: %[[C1024:.*]] = arith.constant 1024 : index
// CHECK: %[[B:.*]] = memref.view %[[ARENA]][%[[C1024]]][] : memref<1472xi8> to memref<100xf32>
// CHECK: memref.store %{{.*}}, %[[A]]
// CHECK: memref.store %{{.*}}, %[[B]]
// CHECK: %[[C0B:.*]] = arith.constant 0 : index
// CHECK: %[[C:.*]] = memref.view %[[ARENA]][%[[C0B]]][] : memref<1472xi8> to memref<16x16xf32>
// CHECK: memref.load %[[C]]
// CHECK: memref.load %[[B]]
// CHECK-NOT: memref.dealloc %[[A]]
// CHECK-NOT: memref.dealloc %[[B]]
// CHECK-NOT: memref.dealloc %[[C]]
// CHECK: memref.dealloc %[[ARENA]] : memref<1472xi8>
// CHECK-NEXT: return
func.func @main_graph(%v: f32) -> f32 {
  %i = arith.constant 3 : index
  %a = memref.alloc() {alignment = 64 : i64} : memref<256xf32>
  %b = memref.alloc() : memref<100xf32>
  memref.store %v, %a[%i] : memref<256xf32>
  memref.store %v, %b[%i] : memref<100xf32>
  memref.dealloc %a : memref<256xf32>
  %c = memref.alloc() {alignment = 64 : i64} : memref<16x16xf32>
  memref.store %v, %c[%i, %i] : memref<16x16xf32>
  %x = memref.load %c[%i, %i] : memref<16x16xf32>
  %y = memref.load %b[%i] : memref<100xf32>
  %s = arith.addf %x, %y : f32
  memref.dealloc %b : memref<100xf32>
  memref.dealloc %c : memref<16x16xf32>
  return %s : f32
}

// -----

// Buffers the plan leaves to the allocator: a run-time size, an output (no
// dealloc), a conditional free, an alloc inside a loop (its body may run on
// several threads), an address compared by pointer, an alignment above 64.
// No arena is made.
// CHECK: module attributes {transfuse.memory_plan = array<i64: 0, 0, 6>}
// CHECK-LABEL: func.func @main_graph
// CHECK-NOT: transfuse.arena_bytes
// CHECK-NOT: memref.view
// CHECK: memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: memref.alloc() : memref<8xf32>
// CHECK: memref.alloc() : memref<9xf32>
// CHECK: memref.alloc() : memref<10xf32>
// CHECK: memref.alloc() {alignment = 128 : i64} : memref<12xf32>
// CHECK: scf.for
// CHECK: memref.alloc() : memref<11xf32>
// CHECK-NOT: memref.view
func.func @main_graph(%n: index, %cond: i1) -> (memref<8xf32>, index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %dynamic = memref.alloc(%n) : memref<?xf32>
  %output = memref.alloc() : memref<8xf32>
  %conditional = memref.alloc() : memref<9xf32>
  %compared = memref.alloc() : memref<10xf32>
  %aligned = memref.alloc() {alignment = 128 : i64} : memref<12xf32>
  %p = memref.extract_aligned_pointer_as_index %compared : memref<10xf32> -> index
  scf.for %k = %c0 to %n step %c1 {
    %inner = memref.alloc() : memref<11xf32>
    memref.dealloc %inner : memref<11xf32>
  }
  scf.if %cond {
    memref.dealloc %conditional : memref<9xf32>
  }
  memref.dealloc %dynamic : memref<?xf32>
  memref.dealloc %compared : memref<10xf32>
  memref.dealloc %aligned : memref<12xf32>
  return %output, %p : memref<8xf32>, index
}

// -----

// The peak counts main_graph's arena (1024 bytes) and the largest callee
// arena (256), since callees run one at a time. A buffer passed to a call
// that may hand it back is unplanned when the call's result has its address
// taken; a callee with fresh results does not alias its operands. Unplanned:
// that buffer, and the one @fresh returns.
// CHECK: module attributes {transfuse.memory_plan = array<i64: 1280, 3, 2>}
// CHECK-LABEL: func.func @main_graph
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<1024xi8>
// CHECK: memref.view {{.*}} to memref<256xf32>
// CHECK: %[[HANDED:.*]] = memref.alloc() : memref<4xf32>
// CHECK: call @identity(%[[HANDED]])
// CHECK: memref.view {{.*}} to memref<5xf32>
// CHECK: call @fresh
// CHECK-LABEL: func.func private @kernel
// CHECK-SAME: transfuse.arena_bytes = 256
func.func @main_graph() -> (index, index) {
  %a = memref.alloc() : memref<256xf32>
  call @kernel(%a) : (memref<256xf32>) -> ()
  memref.dealloc %a : memref<256xf32>
  %handed = memref.alloc() : memref<4xf32>
  %r = call @identity(%handed) : (memref<4xf32>) -> memref<4xf32>
  %p = memref.extract_aligned_pointer_as_index %r : memref<4xf32> -> index
  memref.dealloc %handed : memref<4xf32>
  %kept = memref.alloc() : memref<5xf32>
  %f = call @fresh(%kept) : (memref<5xf32>) -> memref<5xf32>
  %q = memref.extract_aligned_pointer_as_index %f : memref<5xf32> -> index
  memref.dealloc %kept : memref<5xf32>
  return %p, %q : index, index
}
func.func private @kernel(%x: memref<256xf32>) {
  %t = memref.alloc() : memref<64xf32>
  memref.copy %x, %x : memref<256xf32> to memref<256xf32>
  memref.dealloc %t : memref<64xf32>
  return
}
func.func private @identity(%x: memref<4xf32>) -> memref<4xf32> {
  return %x : memref<4xf32>
}
func.func private @fresh(%x: memref<5xf32>) -> memref<5xf32> {
  %y = memref.alloc() : memref<5xf32>
  memref.copy %x, %y : memref<5xf32> to memref<5xf32>
  return %y : memref<5xf32>
}
