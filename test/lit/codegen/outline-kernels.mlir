// RUN: transfuse-opt %s -transfuse-cpu-outline-kernels | FileCheck %s
// RUN: transfuse-opt %s -transfuse-cpu-outline-kernels=norm-kernel=true | FileCheck %s --check-prefix=KERNEL
// RUN: transfuse-opt %s -transfuse-cpu-outline-kernels="norm-kernel=true attention-kernel=true" | FileCheck %s --check-prefix=BOTH

// With norm-kernel (as the CPU pipeline runs it), the f32 norms of rank at
// most 4 that the runtime's norm kernel takes stay inline (one call of the
// runtime each after lowering); a rank-5 one, which the kernel does not
// take, and attention are still outlined.
// KERNEL-LABEL: func.func @main_graph
// KERNEL-COUNT-3: transformer.layer_norm
// KERNEL: call @tf_kernel_attention
// KERNEL: call @tf_kernel_layer_norm(%arg4, %arg1, %arg1)
// KERNEL: func.func private @tf_kernel_attention
// KERNEL: func.func private @tf_kernel_layer_norm(%{{.*}}: tensor<1x1x2x8x16xf32>
// KERNEL-NOT: func.func

// With attention-kernel too, the f32 attention (two masks at most) stays
// inline as well: its operands may then be views of any layout.
// BOTH-LABEL: func.func @main_graph
// BOTH: transformer.attention %arg3, %arg3, %arg3
// BOTH: call @tf_kernel_layer_norm(%arg4, %arg1, %arg1)
// BOTH-NOT: tf_kernel_attention

// Two layers' identical layer_norms share one private, internal, noinline
// function; a layer_norm with another epsilon gets its own; attention is
// outlined too; the linear (whose weight is packed where the product meets
// it) stays inline.
// CHECK-LABEL: func.func @main_graph
// CHECK: %[[A:.*]] = call @tf_kernel_layer_norm(%arg0, %arg1, %arg1)
// CHECK: transformer.linear %[[A]], %arg2
// CHECK: %[[B:.*]] = call @tf_kernel_layer_norm(%{{.*}}, %arg1, %arg1)
// CHECK: call @tf_kernel_layer_norm_0(%[[B]], %arg1, %arg1)
// CHECK: call @tf_kernel_attention(%arg3, %arg3, %arg3)
// CHECK-NOT: transformer.layer_norm
// CHECK-NOT: transformer.attention
// CHECK: func.func private @tf_kernel_layer_norm(%{{.*}}: tensor<2x8x16xf32>, %{{.*}}: tensor<16xf32>, %{{.*}}: tensor<16xf32>) -> tensor<2x8x16xf32> attributes {llvm.linkage = #llvm.linkage<internal>, passthrough = ["noinline"]}
// CHECK-NEXT: transformer.layer_norm %arg0 scale %arg1 bias %arg2 {epsilon = 9.99999974E-6
// CHECK: func.func private @tf_kernel_layer_norm_0
// CHECK-NEXT: transformer.layer_norm {{.*}}epsilon = 9.99999996E-13
// CHECK: func.func private @tf_kernel_attention
// CHECK-NEXT: transformer.attention %arg0, %arg1, %arg2
// CHECK: func.func private @tf_kernel_layer_norm_1(%{{.*}}: tensor<1x1x2x8x16xf32>
// CHECK-NOT: func.func
func.func @main_graph(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %w: tensor<16x16xf32>, %q: tensor<1x2x8x4xf32>, %x5: tensor<1x1x2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<1x2x8x4xf32>, tensor<1x1x2x8x16xf32>) {
  %a = transformer.layer_norm %x scale %g bias %g {epsilon = 1.0e-5 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %l = transformer.linear %a, %w : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %b = transformer.layer_norm %l scale %g bias %g {epsilon = 1.0e-5 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %c = transformer.layer_norm %b scale %g bias %g {epsilon = 1.0e-12 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %o = transformer.attention %q, %q, %q {scale = 0.5 : f32, algorithm = "materialized", kv_block = 64 : i64} : (tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32>
  %d = transformer.layer_norm %x5 scale %g bias %g {epsilon = 1.0e-5 : f32} : (tensor<1x1x2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<1x1x2x8x16xf32>
  return %c, %o, %d : tensor<2x8x16xf32>, tensor<1x2x8x4xf32>, tensor<1x1x2x8x16xf32>
}
