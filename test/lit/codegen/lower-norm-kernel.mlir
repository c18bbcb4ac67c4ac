// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg="norm-kernel=true" | FileCheck %s
// RUN: transfuse-opt %s -split-input-file -transfuse-cpu-lower-to-linalg | FileCheck %s --check-prefix=LOOPS

// With norm-kernel, an f32 layer_norm is one call of the runtime's norm
// kernel: input and residual padded to rank 4 and passed as read-only
// buffers, scale and bias 1-D, the result (and the residual sum) in fresh
// rank-4 buffers reshaped back; flags = residual 1 | bias 2 | sum 4. The
// residual's broadcast against the input is checked at run time. Without
// the option: generated loops.
// CHECK: func.func private @transfuse_norm_f32(memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, f32, i64) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @residual_sum
// CHECK-DAG: %[[EPS:.*]] = arith.constant 9.99999974E-6 : f32
// CHECK-DAG: %[[FLAGS:.*]] = arith.constant 7 : i64
// CHECK: scf.if
// CHECK: call @__transfuse_fail
// CHECK-DAG: %[[X:.*]] = tensor.reshape %arg0
// CHECK-DAG: bufferization.to_buffer %[[X]] read_only : tensor<1x?x?x768xf32>
// CHECK-DAG: %[[R:.*]] = tensor.reshape %arg1
// CHECK-DAG: bufferization.to_buffer %[[R]] read_only : tensor<1x?x?x768xf32>
// CHECK-DAG: bufferization.to_buffer %arg2 read_only : tensor<768xf32>
// CHECK-DAG: %[[Y:.*]] = memref.alloc(%{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<1x?x?x768xf32>
// CHECK-DAG: %[[S:.*]] = memref.alloc(%{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<1x?x?x768xf32>
// CHECK: call @transfuse_norm_f32({{.*}}, %[[EPS]], %[[FLAGS]])
// CHECK: %[[YT:.*]] = bufferization.to_tensor %[[Y]] restrict writable
// CHECK: tensor.reshape %[[YT]]{{.*}} -> tensor<?x?x768xf32>
// CHECK: %[[ST:.*]] = bufferization.to_tensor %[[S]] restrict writable
// CHECK: tensor.reshape %[[ST]]{{.*}} -> tensor<?x?x768xf32>
// LOOPS-LABEL: func.func @residual_sum
// LOOPS-NOT: call @transfuse_norm_f32
// LOOPS: linalg.generic
func.func @residual_sum(%x: tensor<?x?x768xf32>, %r: tensor<?x?x768xf32>, %g: tensor<768xf32>) -> (tensor<?x?x768xf32>, tensor<?x?x768xf32>) {
  %0:2 = transformer.layer_norm %x residual %r scale %g bias %g {epsilon = 1.0e-5 : f32} : (tensor<?x?x768xf32>, tensor<?x?x768xf32>, tensor<768xf32>, tensor<768xf32>) -> (tensor<?x?x768xf32>, tensor<?x?x768xf32>)
  return %0#0, %0#1 : tensor<?x?x768xf32>, tensor<?x?x768xf32>
}

// -----

// rms_norm: flags 8 (no residual, no bias); the unused operands are the
// input and the scale again. A static shape needs no dims.
// CHECK-LABEL: func.func @rms
// CHECK-NOT: scf.if
// CHECK-DAG: %[[FLAGS:.*]] = arith.constant 8 : i64
// CHECK-DAG: %[[Y:.*]] = memref.alloc() {alignment = 64 : i64} : memref<1x1x4x64xf32>
// CHECK: call @transfuse_norm_f32(%[[X:[^,]*]], %[[X]], %[[G:[^,]*]], %[[G]], %[[YC:[^,]*]], %[[YC]], %{{.*}}, %[[FLAGS]])
func.func @rms(%x: tensor<4x64xf32>, %g: tensor<64xf32>) -> tensor<4x64xf32> {
  %0 = transformer.rms_norm %x, %g {epsilon = 1.0e-6 : f32} : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
  return %0 : tensor<4x64xf32>
}

// -----

// Negative: f16 stays in generated loops.
// CHECK-LABEL: func.func @half
// CHECK-NOT: call @transfuse_norm_f32
// CHECK: linalg.generic
func.func @half(%x: tensor<4x64xf16>, %g: tensor<64xf16>) -> tensor<4x64xf16> {
  %0 = transformer.layer_norm %x scale %g {epsilon = 1.0e-5 : f32} : (tensor<4x64xf16>, tensor<64xf16>) -> tensor<4x64xf16>
  return %0 : tensor<4x64xf16>
}

// -----

// Negative: rank 5 is more than the kernel's descriptors hold.
// CHECK-LABEL: func.func @rank5
// CHECK-NOT: call @transfuse_norm_f32
// CHECK: linalg.generic
func.func @rank5(%x: tensor<2x2x2x2x64xf32>, %g: tensor<64xf32>) -> tensor<2x2x2x2x64xf32> {
  %0 = transformer.layer_norm %x scale %g {epsilon = 1.0e-5 : f32} : (tensor<2x2x2x2x64xf32>, tensor<64xf32>) -> tensor<2x2x2x2x64xf32>
  return %0 : tensor<2x2x2x2x64xf32>
}

// -----

// A scale of dynamic length is checked against the rows' length at run time
// (the kernel reads scale[j] for every column j; a length of 1 broadcasts).
// CHECK: transfuse.fail_sites = ["an op: layer_norm: the scale or bias length differs from the last dim"]
// CHECK-LABEL: func.func @dynamic_scale
// CHECK: scf.if
// CHECK: call @__transfuse_fail
// CHECK: call @transfuse_norm_f32
func.func @dynamic_scale(%x: tensor<4x64xf32>, %g: tensor<?xf32>) -> tensor<4x64xf32> {
  %0 = transformer.layer_norm %x scale %g {epsilon = 1.0e-5 : f32} : (tensor<4x64xf32>, tensor<?xf32>) -> tensor<4x64xf32>
  return %0 : tensor<4x64xf32>
}
