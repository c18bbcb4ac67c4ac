// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-fuse-kv-append | FileCheck %s

// A decode step as bufferization and transfuse-cpu-stream-large-copies
// leave it: present K and V are fresh buffers, the past copied into rows
// [0, Sp) (transfuse_copy_f32) and the new token into rows [Sp, Sp + 1)
// (memref.copy), then the attention reads them. Both past copies go: the
// attention takes the past as two more operands, and the subviews and
// casts only they used go too. The new token's copies stay.
// CHECK: func.func private @transfuse_attention_f32_past({{.*}}) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[PK:[^:]*]]: memref<?x4x?x8xf32>, %[[PV:[^:]*]]: memref<?x4x?x8xf32>
// CHECK-NOT: call @transfuse_copy_f32
// CHECK: memref.copy
// CHECK: memref.copy
// CHECK-NOT: memref.subview %{{.*}}[0, 0, 0, 0]
// CHECK: %[[CK:.*]] = memref.cast %[[PK]] : memref<?x4x?x8xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: %[[CV:.*]] = memref.cast %[[PV]] : memref<?x4x?x8xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: call @transfuse_attention_f32_past(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[CK]], %[[CV]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT: call @transfuse_attention_f32(
#dyn = strided<[?, ?, ?, ?], offset: ?>
func.func private @transfuse_copy_f32(memref<*xf32>, memref<*xf32>) attributes {llvm.emit_c_interface}
func.func private @transfuse_attention_f32(memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) attributes {llvm.emit_c_interface}
func.func @decode(%pk: memref<?x4x?x8xf32>, %pv: memref<?x4x?x8xf32>,
                  %nk: memref<?x4x1x8xf32>, %nv: memref<?x4x1x8xf32>,
                  %q: memref<?x?x?x?xf32, #dyn>, %m: memref<?x?x?x?xf32, #dyn>,
                  %o: memref<?x?x?x?xf32, #dyn>)
    -> (memref<?x4x?x8xf32>, memref<?x4x?x8xf32>) {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %c1 = arith.constant 1 : i64
  %c0i = arith.constant 0 : i64
  %s = arith.constant 0.35 : f32
  %nocap = arith.constant 0.0 : f32
  %b = memref.dim %pk, %c0 : memref<?x4x?x8xf32>
  %sp = memref.dim %pk, %c2 : memref<?x4x?x8xf32>
  %b1 = memref.dim %nk, %c0 : memref<?x4x1x8xf32>
  %st = arith.addi %sp, %c2 : index
  %k = memref.alloc(%b, %st) : memref<?x4x?x8xf32>
  %kp = memref.subview %k[0, 0, 0, 0] [%b, 4, %sp, 8] [1, 1, 1, 1] : memref<?x4x?x8xf32> to memref<?x4x?x8xf32, strided<[?, ?, 8, 1]>>
  %u0 = memref.cast %pk : memref<?x4x?x8xf32> to memref<*xf32>
  %u1 = memref.cast %kp : memref<?x4x?x8xf32, strided<[?, ?, 8, 1]>> to memref<*xf32>
  call @transfuse_copy_f32(%u0, %u1) : (memref<*xf32>, memref<*xf32>) -> ()
  %kn = memref.subview %k[0, 0, %sp, 0] [%b1, 4, 1, 8] [1, 1, 1, 1] : memref<?x4x?x8xf32> to memref<?x4x1x8xf32, strided<[?, ?, 8, 1], offset: ?>>
  memref.copy %nk, %kn : memref<?x4x1x8xf32> to memref<?x4x1x8xf32, strided<[?, ?, 8, 1], offset: ?>>
  %v = memref.alloc(%b, %st) : memref<?x4x?x8xf32>
  %vp = memref.subview %v[0, 0, 0, 0] [%b, 4, %sp, 8] [1, 1, 1, 1] : memref<?x4x?x8xf32> to memref<?x4x?x8xf32, strided<[?, ?, 8, 1]>>
  %u2 = memref.cast %pv : memref<?x4x?x8xf32> to memref<*xf32>
  %u3 = memref.cast %vp : memref<?x4x?x8xf32, strided<[?, ?, 8, 1]>> to memref<*xf32>
  call @transfuse_copy_f32(%u2, %u3) : (memref<*xf32>, memref<*xf32>) -> ()
  %vn = memref.subview %v[0, 0, %sp, 0] [%b1, 4, 1, 8] [1, 1, 1, 1] : memref<?x4x?x8xf32> to memref<?x4x1x8xf32, strided<[?, ?, 8, 1], offset: ?>>
  memref.copy %nv, %vn : memref<?x4x1x8xf32> to memref<?x4x1x8xf32, strided<[?, ?, 8, 1], offset: ?>>
  %ka = memref.cast %k : memref<?x4x?x8xf32> to memref<?x?x?x?xf32, #dyn>
  %va = memref.cast %v : memref<?x4x?x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %ka, %va, %m, %m, %o, %c1, %s, %nocap, %c0i) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  return %k, %v : memref<?x4x?x8xf32>, memref<?x4x?x8xf32>
}

// -----

// A static past copied with memref.copy qualifies too. V's does not (it is
// not a function argument): V's operand is an empty buffer, and V's copy
// stays.
// CHECK-LABEL: func.func @only_k
// CHECK: memref.copy
// CHECK-NOT: memref.copy
// CHECK: %[[E:.*]] = memref.alloca() : memref<0x0x0x0xf32>
// CHECK: %[[CE:.*]] = memref.cast %[[E]]
// CHECK: call @transfuse_attention_f32_past(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[CE]],
#dyn = strided<[?, ?, ?, ?], offset: ?>
func.func private @transfuse_attention_f32(memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) attributes {llvm.emit_c_interface}
func.func @only_k(%pk: memref<1x2x5x8xf32>, %q: memref<?x?x?x?xf32, #dyn>,
                  %o: memref<?x?x?x?xf32, #dyn>) -> memref<1x2x6x8xf32> {
  %c1 = arith.constant 1 : i64
  %s = arith.constant 0.35 : f32
  %nocap = arith.constant 0.0 : f32
  %pv = memref.alloc() : memref<1x2x5x8xf32>
  %k = memref.alloc() : memref<1x2x6x8xf32>
  %kp = memref.subview %k[0, 0, 0, 0] [1, 2, 5, 8] [1, 1, 1, 1] : memref<1x2x6x8xf32> to memref<1x2x5x8xf32, strided<[96, 48, 8, 1]>>
  memref.copy %pk, %kp : memref<1x2x5x8xf32> to memref<1x2x5x8xf32, strided<[96, 48, 8, 1]>>
  %v = memref.alloc() : memref<1x2x6x8xf32>
  %vp = memref.subview %v[0, 0, 0, 0] [1, 2, 5, 8] [1, 1, 1, 1] : memref<1x2x6x8xf32> to memref<1x2x5x8xf32, strided<[96, 48, 8, 1]>>
  memref.copy %pv, %vp : memref<1x2x5x8xf32> to memref<1x2x5x8xf32, strided<[96, 48, 8, 1]>>
  %ka = memref.cast %k : memref<1x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  %va = memref.cast %v : memref<1x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %ka, %va, %q, %q, %o, %c1, %s, %nocap, %c1) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  return %k : memref<1x2x6x8xf32>
}

// -----

// What stays: another op reading K between the copy and the attention; a
// past copied into part of the batch; a past copied at a key offset other
// than 0 with nothing at 0; the attention reading K through a second
// operand too (K as a mask); a later copy that may overlap the past's
// rows (its offset not the past's size).
// CHECK-LABEL: func.func @stays
// CHECK-NOT: transfuse_attention_f32_past
// CHECK-COUNT-5: call @transfuse_attention_f32(
#dyn = strided<[?, ?, ?, ?], offset: ?>
func.func private @transfuse_attention_f32(memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) attributes {llvm.emit_c_interface}
func.func private @use(memref<2x2x6x8xf32>)
func.func @stays(%p: memref<2x2x5x8xf32>, %p1: memref<1x2x5x8xf32>,
                 %n: memref<2x2x2x8xf32>, %q: memref<?x?x?x?xf32, #dyn>,
                 %o: memref<?x?x?x?xf32, #dyn>, %i: index) {
  %c1 = arith.constant 1 : i64
  %s = arith.constant 0.35 : f32
  %nocap = arith.constant 0.0 : f32
  // Read in between.
  %a = memref.alloc() : memref<2x2x6x8xf32>
  %av = memref.subview %a[0, 0, 0, 0] [2, 2, 5, 8] [1, 1, 1, 1] : memref<2x2x6x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1]>>
  memref.copy %p, %av : memref<2x2x5x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1]>>
  call @use(%a) : (memref<2x2x6x8xf32>) -> ()
  %ac = memref.cast %a : memref<2x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %ac, %q, %q, %q, %o, %c1, %s, %nocap, %c1) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  // Part of the batch.
  %b = memref.alloc() : memref<2x2x6x8xf32>
  %bv = memref.subview %b[0, 0, 0, 0] [1, 2, 5, 8] [1, 1, 1, 1] : memref<2x2x6x8xf32> to memref<1x2x5x8xf32, strided<[96, 48, 8, 1]>>
  memref.copy %p1, %bv : memref<1x2x5x8xf32> to memref<1x2x5x8xf32, strided<[96, 48, 8, 1]>>
  %bc = memref.cast %b : memref<2x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %bc, %q, %q, %q, %o, %c1, %s, %nocap, %c1) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  // Only rows [1, 6).
  %c = memref.alloc() : memref<2x2x6x8xf32>
  %cv = memref.subview %c[0, 0, 1, 0] [2, 2, 5, 8] [1, 1, 1, 1] : memref<2x2x6x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1], offset: 8>>
  memref.copy %p, %cv : memref<2x2x5x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1], offset: 8>>
  %cc = memref.cast %c : memref<2x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %cc, %q, %q, %q, %o, %c1, %s, %nocap, %c1) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  // K as a mask too.
  %d = memref.alloc() : memref<2x2x6x8xf32>
  %dv = memref.subview %d[0, 0, 0, 0] [2, 2, 5, 8] [1, 1, 1, 1] : memref<2x2x6x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1]>>
  memref.copy %p, %dv : memref<2x2x5x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1]>>
  %dc = memref.cast %d : memref<2x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %dc, %q, %dc, %q, %o, %c1, %s, %nocap, %c1) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  // A later copy at a run-time offset %i, not the past's 5 rows.
  %e = memref.alloc() : memref<2x2x6x8xf32>
  %ev = memref.subview %e[0, 0, 0, 0] [2, 2, 5, 8] [1, 1, 1, 1] : memref<2x2x6x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1]>>
  memref.copy %p, %ev : memref<2x2x5x8xf32> to memref<2x2x5x8xf32, strided<[96, 48, 8, 1]>>
  %en = memref.subview %e[0, 0, %i, 0] [2, 2, 2, 8] [1, 1, 1, 1] : memref<2x2x6x8xf32> to memref<2x2x2x8xf32, strided<[96, 48, 8, 1], offset: ?>>
  memref.copy %n, %en : memref<2x2x2x8xf32> to memref<2x2x2x8xf32, strided<[96, 48, 8, 1], offset: ?>>
  %ec = memref.cast %e : memref<2x2x6x8xf32> to memref<?x?x?x?xf32, #dyn>
  call @transfuse_attention_f32(%q, %ec, %q, %q, %q, %o, %c1, %s, %nocap, %c1) : (memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, memref<?x?x?x?xf32, #dyn>, i64, f32, f32, i64) -> ()
  return
}
