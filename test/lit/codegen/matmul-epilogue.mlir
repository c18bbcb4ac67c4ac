// RUN: transfuse-opt %s -transfuse-cpu-matmul-to-microkernel | FileCheck %s
// RUN: transfuse-opt %s '-transfuse-cpu-matmul-to-microkernel=precision=bf16' | FileCheck %s --check-prefix=BF16

// A `linear`'s epilogue, the elementwise pass LowerLinear writes over the
// product, goes into the runtime's call when it is act(C + bias) +
// residual: transfuse_linear_f32_packed(A, packed B, out, bias, residual,
// flags), flags = activation | 256 (bias) | 512 (residual); the pass is
// gone. With bf16 weights, the same through transfuse_linear_bf16_packed.
// BF16: func.func private @transfuse_linear_bf16_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xbf16>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64)
// BF16-LABEL: func @gelu_bias_reshaped
// BF16: call @transfuse_linear_bf16_packed({{.*}}, %c258_i64)
// BF16-NOT: linalg.generic
// BF16-LABEL: func @not_fused

// CHECK: func.func private @transfuse_linear_f32_packed(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?x32xf32>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i64) attributes {llvm.emit_c_interface}

#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#last3 = affine_map<(d0, d1, d2) -> (d2)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#last2 = affine_map<(d0, d1) -> (d1)>
memref.global "private" constant @w : memref<8x40xf32> = dense<1.0>
memref.global "private" constant @bias : memref<40xf32> = dense<2.0>

// gelu(x W + b), the product seen through a reshape to [B, S, N] as
// LowerLinear leaves it; the output is collapsed to [B * S, N].
// CHECK-LABEL: func @gelu_bias_reshaped
// CHECK: %[[OUT:.*]] = memref.alloc(){{.*}}: memref<2x3x40xf32>
// CHECK: memref.collapse_shape %[[OUT]] {{.*}} : memref<2x3x40xf32> into memref<6x40xf32>
// CHECK: %[[FLAGS:.*]] = arith.constant 258 : i64
// CHECK: call @transfuse_linear_f32_packed({{.*}}, %[[FLAGS]])
// CHECK-NOT: linalg.generic
// CHECK: return %[[OUT]]
func.func @gelu_bias_reshaped(%a: memref<6x8xf32>) -> memref<2x3x40xf32> {
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %rsqrt2 = arith.constant 0.707106769 : f32
  %w = memref.get_global @w : memref<8x40xf32>
  %b = memref.get_global @bias : memref<40xf32>
  %c = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c : memref<6x40xf32>)
  %view = memref.expand_shape %c [[0, 1], [2]] output_shape [2, 3, 40] : memref<6x40xf32> into memref<2x3x40xf32>
  %out = memref.alloc() : memref<2x3x40xf32>
  linalg.generic {indexing_maps = [#id3, #last3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%view, %b : memref<2x3x40xf32>, memref<40xf32>) outs(%out : memref<2x3x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    %s = arith.mulf %y, %rsqrt2 : f32
    %e = math.erf %s : f32
    %h = arith.mulf %y, %half : f32
    %e1 = arith.addf %e, %one : f32
    %g = arith.mulf %h, %e1 : f32
    linalg.yield %g : f32
  }
  return %out : memref<2x3x40xf32>
}

// A residual, no bias, no activation (operands in the other order): flags
// 512, and the bias operand an empty buffer that is not read.
// CHECK-LABEL: func @residual
// CHECK-DAG: %[[FLAGS:.*]] = arith.constant 512 : i64
// CHECK-DAG: %[[NOBIAS:.*]] = memref.alloca() : memref<0xf32>
// CHECK-DAG: %[[BIAS:.*]] = memref.cast %[[NOBIAS]]
// CHECK-DAG: %[[RES:.*]] = memref.cast %arg1 : memref<6x40xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @transfuse_linear_f32_packed({{.*}}, %[[BIAS]], %[[RES]], %[[FLAGS]])
// CHECK-NOT: linalg.generic
func.func @residual(%a: memref<6x8xf32>, %r: memref<6x40xf32>) -> memref<6x40xf32> {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @w : memref<8x40xf32>
  %c = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c : memref<6x40xf32>)
  %out = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%r, %c : memref<6x40xf32>, memref<6x40xf32>) outs(%out : memref<6x40xf32>) {
  ^bb0(%rv: f32, %x: f32, %o: f32):
    %y = arith.addf %rv, %x : f32
    linalg.yield %y : f32
  }
  return %out : memref<6x40xf32>
}

// relu(x W + b) + r: flags 1 | 256 | 512.
// CHECK-LABEL: func @relu_bias_residual
// CHECK: %[[FLAGS:.*]] = arith.constant 769 : i64
// CHECK: call @transfuse_linear_f32_packed({{.*}}, %[[FLAGS]])
// CHECK-NOT: linalg.generic
func.func @relu_bias_residual(%a: memref<6x8xf32>, %r: memref<6x40xf32>) -> memref<6x40xf32> {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @w : memref<8x40xf32>
  %b = memref.get_global @bias : memref<40xf32>
  %c = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c : memref<6x40xf32>)
  %out = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #last2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c, %b, %r : memref<6x40xf32>, memref<40xf32>, memref<6x40xf32>) outs(%out : memref<6x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %rv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    %m = arith.maximumf %y, %zero : f32
    %z = arith.addf %m, %rv : f32
    linalg.yield %z : f32
  }
  return %out : memref<6x40xf32>
}

// gelu_tanh (flags 3) and silu (flags 4), no bias.
// CHECK-LABEL: func @gelu_tanh_and_silu
// CHECK: %[[TANH:.*]] = arith.constant 3 : i64
// CHECK: call @transfuse_linear_f32_packed({{.*}}, %[[TANH]])
// CHECK: %[[SILU:.*]] = arith.constant 4 : i64
// CHECK: call @transfuse_linear_f32_packed({{.*}}, %[[SILU]])
// CHECK-NOT: linalg.generic
func.func @gelu_tanh_and_silu(%a: memref<6x8xf32>) -> (memref<6x40xf32>, memref<6x40xf32>) {
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %k = arith.constant 0.0447149985 : f32
  %s2pi = arith.constant 0.797884583 : f32
  %w = memref.get_global @w : memref<8x40xf32>
  %c = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c : memref<6x40xf32>)
  %out = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c : memref<6x40xf32>) outs(%out : memref<6x40xf32>) {
  ^bb0(%x: f32, %o: f32):
    %x2 = arith.mulf %x, %x : f32
    %x3 = arith.mulf %x2, %x : f32
    %t = arith.mulf %x3, %k : f32
    %i = arith.addf %x, %t : f32
    %i2 = arith.mulf %i, %s2pi : f32
    %th = math.tanh %i2 : f32
    %h = arith.mulf %x, %half : f32
    %t1 = arith.addf %th, %one : f32
    %g = arith.mulf %h, %t1 : f32
    linalg.yield %g : f32
  }
  %c2 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c2 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c2 : memref<6x40xf32>)
  %out2 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c2 : memref<6x40xf32>) outs(%out2 : memref<6x40xf32>) {
  ^bb0(%x: f32, %o: f32):
    %n = arith.negf %x : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %y = arith.divf %x, %d : f32
    linalg.yield %y : f32
  }
  return %out, %out2 : memref<6x40xf32>, memref<6x40xf32>
}

// Negative: the product read twice (here also by a copy), a body that is
// not an epilogue (a subtraction), gelu with another constant, a write to
// memory between the product and the pass, an output that is not a fresh
// buffer, a product that accumulates (no zero fill), and the product as
// two operands of the pass (C + C, which would pass for C + residual): each
// keeps the plain call and its pass.
// CHECK-LABEL: func @not_fused
// CHECK-NOT: transfuse_linear_f32_packed
// CHECK-COUNT-7: call @transfuse_matmul_f32_packed
// CHECK-NOT: transfuse_linear_f32_packed
// CHECK: return
func.func @not_fused(%a: memref<6x8xf32>, %r: memref<6x40xf32>, %given: memref<6x40xf32>) -> (memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>) {
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.6 : f32
  %one = arith.constant 1.0 : f32
  %rsqrt2 = arith.constant 0.707106769 : f32
  %w = memref.get_global @w : memref<8x40xf32>
  %b = memref.get_global @bias : memref<40xf32>
  // Read twice.
  %c0 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c0 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c0 : memref<6x40xf32>)
  %o0 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #last2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c0, %b : memref<6x40xf32>, memref<40xf32>) outs(%o0 : memref<6x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    linalg.yield %y : f32
  }
  memref.copy %c0, %given : memref<6x40xf32> to memref<6x40xf32>
  // Not an epilogue.
  %c1 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c1 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c1 : memref<6x40xf32>)
  %o1 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c1, %r : memref<6x40xf32>, memref<6x40xf32>) outs(%o1 : memref<6x40xf32>) {
  ^bb0(%x: f32, %rv: f32, %o: f32):
    %y = arith.subf %x, %rv : f32
    linalg.yield %y : f32
  }
  // gelu's shape with 0.6 for 0.5.
  %c2 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c2 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c2 : memref<6x40xf32>)
  %o2 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c2 : memref<6x40xf32>) outs(%o2 : memref<6x40xf32>) {
  ^bb0(%x: f32, %o: f32):
    %s = arith.mulf %x, %rsqrt2 : f32
    %e = math.erf %s : f32
    %h = arith.mulf %x, %half : f32
    %e1 = arith.addf %e, %one : f32
    %g = arith.mulf %h, %e1 : f32
    linalg.yield %g : f32
  }
  // A write in between: A's buffer could change under a moved product.
  %c3 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c3 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c3 : memref<6x40xf32>)
  linalg.fill ins(%one : f32) outs(%a : memref<6x8xf32>)
  %o3 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #last2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c3, %b : memref<6x40xf32>, memref<40xf32>) outs(%o3 : memref<6x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    linalg.yield %y : f32
  }
  // Output not a fresh buffer.
  %c4 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c4 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c4 : memref<6x40xf32>)
  linalg.generic {indexing_maps = [#id2, #last2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c4, %b : memref<6x40xf32>, memref<40xf32>) outs(%given : memref<6x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    linalg.yield %y : f32
  }
  // Accumulating: C is not filled with zeros first.
  %c5 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%one : f32) outs(%c5 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c5 : memref<6x40xf32>)
  %o5 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #last2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c5, %b : memref<6x40xf32>, memref<40xf32>) outs(%o5 : memref<6x40xf32>) {
  ^bb0(%x: f32, %bv: f32, %o: f32):
    %y = arith.addf %x, %bv : f32
    linalg.yield %y : f32
  }
  // The product twice.
  %c6 = memref.alloc() : memref<6x40xf32>
  linalg.fill ins(%zero : f32) outs(%c6 : memref<6x40xf32>)
  linalg.matmul ins(%a, %w : memref<6x8xf32>, memref<8x40xf32>) outs(%c6 : memref<6x40xf32>)
  %o6 = memref.alloc() : memref<6x40xf32>
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c6, %c6 : memref<6x40xf32>, memref<6x40xf32>) outs(%o6 : memref<6x40xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %z = arith.addf %x, %y : f32
    linalg.yield %z : f32
  }
  return %o0, %o1, %o2, %o3, %o5, %o6 : memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>, memref<6x40xf32>
}
