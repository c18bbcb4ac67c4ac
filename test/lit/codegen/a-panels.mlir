// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-a-panels | FileCheck %s

// The calls as transfuse-cpu-matmul-to-microkernel and the norm kernel's
// lowering leave them: a norm's output feeds a bf16 linear (GELU, bias)
// whose output feeds another. The norm writes the first product's A panels
// (rows 2 * 40 = 80, K = 64: 80 * 64 elements), the first linear reads them
// and writes the second's (80 x 96 padded to 96: 80 * 96), which reads
// those; flags | 1024 to read, | 2048 to write. The f32 outputs stay, but
// as nothing else reads the first linear's, it need not write it (| 4096).
// CHECK-DAG: func.func private @transfuse_norm_f32_panels({{.*}}, f32, i64, memref<?xbf16>) attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @transfuse_linear_bf16_panels(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xbf16>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64, memref<?xbf16>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func @chain
// CHECK: %[[P1:.*]] = memref.alloc() {alignment = 64 : i64} : memref<5120xbf16>
// CHECK: %[[P1C:.*]] = memref.cast %[[P1]] : memref<5120xbf16> to memref<?xbf16>
// CHECK: call @transfuse_norm_f32_panels(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[P1C]])
// CHECK: %[[P2:.*]] = memref.alloc() {alignment = 64 : i64} : memref<7680xbf16>
// CHECK: %[[P2C:.*]] = memref.cast %[[P2]] : memref<7680xbf16> to memref<?xbf16>
// CHECK: %[[F1:.*]] = arith.constant 7426 : i64
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %[[P1C]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[F1]], %[[P2C]])
// CHECK: %[[F2:.*]] = arith.constant 1024 : i64
// CHECK: %[[NONE:.*]] = memref.alloca() : memref<0xbf16>
// CHECK: %[[NONEC:.*]] = memref.cast %[[NONE]] : memref<0xbf16> to memref<?xbf16>
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %[[P2C]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[F2]], %[[NONEC]])
// CHECK-NOT: call @transfuse_linear_bf16_packed
// CHECK-NOT: call @transfuse_norm_f32(
func.func private @transfuse_norm_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @chain(%x: memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, %g: memref<?xf32, strided<[?], offset: ?>>, %w1: memref<?x?x32xbf16>, %w2: memref<?x?x32xbf16>, %bias: memref<?xf32, strided<[?], offset: ?>>, %out: memref<80x32xf32>) {
  %eps = arith.constant 1.0e-5 : f32
  %c2 = arith.constant 2 : i64
  %y = memref.alloc() {alignment = 64 : i64} : memref<1x2x40x64xf32>
  %yc = memref.cast %y : memref<1x2x40x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %yc, %yc, %eps, %c2) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %a1 = memref.collapse_shape %y [[0, 1, 2], [3]] : memref<1x2x40x64xf32> into memref<80x64xf32>
  %a1c = memref.cast %a1 : memref<80x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %h = memref.alloc() {alignment = 64 : i64} : memref<2x40x96xf32>
  %hf = memref.collapse_shape %h [[0, 1], [2]] : memref<2x40x96xf32> into memref<80x96xf32>
  %hc = memref.cast %hf : memref<80x96xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %hr = memref.cast %hf : memref<80x96xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %f1 = arith.constant 258 : i64
  call @transfuse_linear_bf16_packed(%a1c, %w1, %hc, %bias, %hr, %f1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  %a2 = memref.collapse_shape %h [[0, 1], [2]] : memref<2x40x96xf32> into memref<80x96xf32>
  %a2c = memref.cast %a2 : memref<80x96xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %oc = memref.cast %out : memref<80x32xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %f0 = arith.constant 0 : i64
  call @transfuse_linear_bf16_packed(%a2c, %w2, %oc, %bias, %oc, %f0) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  return
}

// -----

// Dynamic rows (through memref.reshape with the same static last dim): the
// panels' size is computed, ceil(rows / 16) * 16 * 96 (K = 77 padded to
// 96). Two products read the one output: both take the same panels.
// CHECK-LABEL: func @dynamic_two_readers
// CHECK: %[[Y:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<1x1x?x77xf32>
// CHECK: %[[C2:.*]] = arith.constant 2 : index
// CHECK: %[[R1:.*]] = memref.dim %[[Y]], %[[C2]]
// CHECK: %[[C15:.*]] = arith.constant 15 : index
// CHECK: %[[R2:.*]] = arith.addi %[[R1]], %[[C15]] : index
// CHECK: %[[C16:.*]] = arith.constant 16 : index
// CHECK: %[[R3:.*]] = arith.divui %[[R2]], %[[C16]] : index
// CHECK: %[[C1536:.*]] = arith.constant 1536 : index
// CHECK: %[[SIZE:.*]] = arith.muli %[[R3]], %[[C1536]] : index
// CHECK: %[[P:.*]] = memref.alloc(%[[SIZE]]) {alignment = 64 : i64} : memref<?xbf16>
// CHECK: call @transfuse_norm_f32_panels({{.*}}, %[[P]])
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %[[P]],
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %[[P]],
func.func private @transfuse_norm_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @dynamic_two_readers(%x: memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, %g: memref<?xf32, strided<[?], offset: ?>>, %w: memref<?x?x32xbf16>, %shape: memref<2xi64>, %n: index, %o1: memref<?x?xf32, strided<[?, ?], offset: ?>>, %o2: memref<?x?xf32, strided<[?, ?], offset: ?>>) {
  %eps = arith.constant 1.0e-5 : f32
  %c8 = arith.constant 8 : i64
  %y = memref.alloc(%n) {alignment = 64 : i64} : memref<1x1x?x77xf32>
  %yc = memref.cast %y : memref<1x1x?x77xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %yc, %yc, %eps, %c8) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %a = memref.reshape %y(%shape) : (memref<1x1x?x77xf32>, memref<2xi64>) -> memref<?x77xf32>
  %ac = memref.cast %a : memref<?x77xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %f = arith.constant 0 : i64
  call @transfuse_linear_bf16_packed(%ac, %w, %o1, %g, %o1, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_bf16_packed(%ac, %w, %o2, %g, %o2, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  return
}

// -----

// Left as they are: A as a transposed view (its rows are not the buffer's);
// A through a reshape that changes the last dim; another write of the
// buffer between the norm and the product; the producer in another block;
// a linear that reads its own output as the residual (flags | 512); a
// norm that writes its sum output into the buffer (flags | 4).
// CHECK-LABEL: func @negative
// CHECK-NOT: panels
// CHECK: return
func.func private @transfuse_norm_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @negative(%x: memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, %g: memref<?xf32, strided<[?], offset: ?>>, %w: memref<?x?x32xbf16>, %shape: memref<2xi64>, %o: memref<?x?xf32, strided<[?, ?], offset: ?>>, %cond: i1, %a0: memref<?x?xf32, strided<[?, ?], offset: ?>>) {
  %eps = arith.constant 1.0e-5 : f32
  %c2 = arith.constant 2 : i64
  %c4 = arith.constant 4 : i64
  %f = arith.constant 0 : i64
  %zero = arith.constant 0.0 : f32
  // Transposed A.
  %y1 = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %y1c = memref.cast %y1 : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %y1c, %y1c, %eps, %c2) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %t1 = memref.collapse_shape %y1 [[0, 1, 2], [3]] : memref<1x1x64x64xf32> into memref<64x64xf32>
  %t1t = memref.transpose %t1 (d0, d1) -> (d1, d0) : memref<64x64xf32> to memref<64x64xf32, strided<[1, 64]>>
  %t1c = memref.cast %t1t : memref<64x64xf32, strided<[1, 64]>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%t1c, %w, %o, %g, %o, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  // A reshape to another last dim.
  %y2 = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %y2c = memref.cast %y2 : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %y2c, %y2c, %eps, %c2) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %r2 = memref.reshape %y2(%shape) : (memref<1x1x64x64xf32>, memref<2xi64>) -> memref<32x128xf32>
  %r2c = memref.cast %r2 : memref<32x128xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%r2c, %w, %o, %g, %o, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  // Another write in between.
  %y3 = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %y3c = memref.cast %y3 : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %y3c, %y3c, %eps, %c2) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %s3 = memref.subview %y3[0, 0, 0, 0] [1, 1, 1, 64] [1, 1, 1, 1] : memref<1x1x64x64xf32> to memref<1x1x1x64xf32, strided<[4096, 4096, 64, 1]>>
  linalg.fill ins(%zero : f32) outs(%s3 : memref<1x1x1x64xf32, strided<[4096, 4096, 64, 1]>>)
  %a3 = memref.collapse_shape %y3 [[0, 1, 2], [3]] : memref<1x1x64x64xf32> into memref<64x64xf32>
  %a3c = memref.cast %a3 : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%a3c, %w, %o, %g, %o, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  // The product in another block than the producer.
  %y4 = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %y4c = memref.cast %y4 : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %y4c, %y4c, %eps, %c2) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  scf.if %cond {
    %a4 = memref.collapse_shape %y4 [[0, 1, 2], [3]] : memref<1x1x64x64xf32> into memref<64x64xf32>
    %a4c = memref.cast %a4 : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
    func.call @transfuse_linear_bf16_packed(%a4c, %w, %o, %g, %o, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  }
  // A linear reading its output as its residual.
  %h5 = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
  %h5c = memref.cast %h5 : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %f512 = arith.constant 512 : i64
  call @transfuse_linear_bf16_packed(%a0, %w, %h5c, %g, %h5c, %f512) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_bf16_packed(%h5c, %w, %o, %g, %o, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  // A norm writing its sum output there too.
  %y6 = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %y6c = memref.cast %y6 : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  %y6s = memref.cast %y6 : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %y6c, %y6s, %eps, %c4) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %a6 = memref.collapse_shape %y6 [[0, 1, 2], [3]] : memref<1x1x64x64xf32> into memref<64x64xf32>
  %a6c = memref.cast %a6 : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%a6c, %w, %o, %g, %o, %f) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  return
}

// -----

// The same pair, with the first linear's output also returned, or also
// copied: it writes both (flags 258 | 2048 = 2306).
// CHECK-LABEL: func @also_read
// CHECK: %[[F:.*]] = arith.constant 2306 : i64
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[F]],
// CHECK: call @transfuse_linear_bf16_panels(
// CHECK: %[[G:.*]] = arith.constant 2306 : i64
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[G]],
// CHECK: call @transfuse_linear_bf16_panels(
// CHECK: memref.copy
func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @also_read(%a: memref<?x?xf32, strided<[?, ?], offset: ?>>, %w1: memref<?x?x32xbf16>, %w2: memref<?x?x32xbf16>, %bias: memref<?xf32, strided<[?], offset: ?>>, %out: memref<?x?xf32, strided<[?, ?], offset: ?>>, %copy: memref<80x96xf32>) -> memref<80x96xf32> {
  %f1 = arith.constant 258 : i64
  %f0 = arith.constant 0 : i64
  %h = memref.alloc() {alignment = 64 : i64} : memref<80x96xf32>
  %hc = memref.cast %h : memref<80x96xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%a, %w1, %hc, %bias, %hc, %f1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_bf16_packed(%hc, %w2, %out, %bias, %out, %f0) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  %g = memref.alloc() {alignment = 64 : i64} : memref<80x96xf32>
  %gc = memref.cast %g : memref<80x96xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%a, %w1, %gc, %bias, %gc, %f1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_bf16_packed(%gc, %w2, %out, %bias, %out, %f0) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  memref.copy %g, %copy : memref<80x96xf32> to memref<80x96xf32>
  return %h : memref<80x96xf32>
}

// -----

// Plain products (no bias or activation: LLaMA's and T5's projections),
// which transfuse-cpu-matmul-to-microkernel passes as linears with flags 0
// when they write C afresh, take part like the others. One that
// accumulates into C (transfuse_matmul_bf16_packed, accumulate 1) reads C,
// and is left as it is.
// CHECK-LABEL: func @plain_products
// CHECK: call @transfuse_norm_f32_panels({{.*}}, %[[P1:.*]]) :
// CHECK: %[[F1:.*]] = arith.constant 7168 : i64
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %[[P1]], %{{.*}}, %[[C1:.*]], %{{.*}}, %[[C1]], %[[F1]], %[[P2:.*]]) :
// CHECK: %[[F2:.*]] = arith.constant 1024 : i64
// CHECK: call @transfuse_linear_bf16_panels(%{{.*}}, %[[P2]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[F2]], %{{.*}}) :
// CHECK: call @transfuse_matmul_bf16_packed(
func.func private @transfuse_norm_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_matmul_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @plain_products(%x: memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, %g: memref<?xf32, strided<[?], offset: ?>>, %w: memref<?x?x32xbf16>, %o: memref<?x?xf32, strided<[?, ?], offset: ?>>, %nobias: memref<?xf32, strided<[?], offset: ?>>) {
  %eps = arith.constant 1.0e-5 : f32
  %c8 = arith.constant 8 : i64
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %y = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %yc = memref.cast %y : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %yc, %yc, %eps, %c8) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %a = memref.collapse_shape %y [[0, 1, 2], [3]] : memref<1x1x64x64xf32> into memref<64x64xf32>
  %ac = memref.cast %a : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %h = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
  %hc = memref.cast %h : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%ac, %w, %hc, %nobias, %hc, %c0) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_bf16_packed(%hc, %w, %o, %nobias, %o, %c0) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_matmul_bf16_packed(%ac, %w, %o, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  return
}

// -----

// f32: FFN-up (ReLU, flags 1) feeding FFN-down (residual, flags 512), with
// dynamic rows: the panels are f32, ceil(rows / 12) * 12 * 3072 floats
// (36864 = 12 * 3072), and as nothing else reads FFN-up's output it writes
// only them (1 | 2048 | 4096 = 6145); FFN-down reads them (512 | 1024).
// CHECK-LABEL: func @f32_ffn
// CHECK: %[[R:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x3072xf32>
// CHECK: %[[C11:.*]] = arith.constant 11 : index
// CHECK: %[[R1:.*]] = arith.addi %[[R]], %[[C11]] : index
// CHECK: %[[C12:.*]] = arith.constant 12 : index
// CHECK: %[[R2:.*]] = arith.divui %[[R1]], %[[C12]] : index
// CHECK: %[[C36864:.*]] = arith.constant 36864 : index
// CHECK: %[[SIZE:.*]] = arith.muli %[[R2]], %[[C36864]] : index
// CHECK: %[[P:.*]] = memref.alloc(%[[SIZE]]) {alignment = 64 : i64} : memref<?xf32>
// CHECK: %[[F1:.*]] = arith.constant 6145 : i64
// CHECK: %[[NONE:.*]] = memref.alloca() : memref<0xf32>
// CHECK: %[[NONEC:.*]] = memref.cast %[[NONE]] : memref<0xf32> to memref<?xf32>
// CHECK: call @transfuse_linear_f32_panels(%{{.*}}, %[[NONEC]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[F1]], %[[P]]) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32>, memref<?x?x32xf32>,
// CHECK: %[[F2:.*]] = arith.constant 1536 : i64
// CHECK: call @transfuse_linear_f32_panels(%{{.*}}, %[[P]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[F2]], %{{.*}}) :
// CHECK-NOT: call @transfuse_linear_f32_packed
func.func private @transfuse_linear_f32_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @f32_ffn(%x: memref<?x?xf32, strided<[?, ?], offset: ?>>, %w1: memref<?x?x32xf32>, %w2: memref<?x?x32xf32>, %nobias: memref<?xf32, strided<[?], offset: ?>>, %out: memref<?x?xf32, strided<[?, ?], offset: ?>>, %rows: index) {
  %h = memref.alloc(%rows) {alignment = 64 : i64} : memref<?x3072xf32>
  %hc = memref.cast %h : memref<?x3072xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  %relu = arith.constant 1 : i64
  call @transfuse_linear_f32_packed(%x, %w1, %hc, %nobias, %hc, %relu) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  %res = arith.constant 512 : i64
  call @transfuse_linear_f32_packed(%hc, %w2, %out, %nobias, %x, %res) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  return
}

// -----

// f32 producers are f32 linears only: the norm kernel's output read by an
// f32 linear, and a plain f32 product (transfuse_matmul_f32_packed) read
// by one, are left as they are; so are a bf16 linear's output read by an
// f32 linear and an f32 linear's read by a bf16 one (kinds differ). The
// bf16 linear that reads the norm's output is left too: the f32 linear
// reads that output before it.
// CHECK-LABEL: func @f32_kept
// CHECK-NOT: _panels
// CHECK: return
func.func private @transfuse_norm_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_linear_f32_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_matmul_f32_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @f32_kept(%x: memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, %g: memref<?xf32, strided<[?], offset: ?>>, %w: memref<?x?x32xf32>, %wb: memref<?x?x32xbf16>, %o: memref<?x?xf32, strided<[?, ?], offset: ?>>, %nobias: memref<?xf32, strided<[?], offset: ?>>) {
  %eps = arith.constant 1.0e-5 : f32
  %c8 = arith.constant 8 : i64
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %y = memref.alloc() {alignment = 64 : i64} : memref<1x1x64x64xf32>
  %yc = memref.cast %y : memref<1x1x64x64xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
  call @transfuse_norm_f32(%x, %x, %g, %g, %yc, %yc, %eps, %c8) : (memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) -> ()
  %a = memref.collapse_shape %y [[0, 1, 2], [3]] : memref<1x1x64x64xf32> into memref<64x64xf32>
  %ac = memref.cast %a : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_f32_packed(%ac, %w, %o, %nobias, %o, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  %m = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
  %mc = memref.cast %m : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_matmul_f32_packed(%o, %w, %mc, %c0) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_f32_packed(%mc, %w, %o, %nobias, %o, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  %b = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
  %bc = memref.cast %b : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_bf16_packed(%ac, %wb, %bc, %nobias, %bc, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_f32_packed(%bc, %w, %o, %nobias, %o, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  %f = memref.alloc() {alignment = 64 : i64} : memref<64x64xf32>
  %fc = memref.cast %f : memref<64x64xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  call @transfuse_linear_f32_packed(%ac, %w, %fc, %nobias, %fc, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  call @transfuse_linear_bf16_packed(%fc, %wb, %o, %nobias, %o, %c1) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) -> ()
  return
}
