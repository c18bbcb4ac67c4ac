// RUN: transfuse-opt %s -pass-pipeline='builtin.module(func.func(transfuse-select-attention))' | FileCheck %s
// RUN: transfuse-opt %s -pass-pipeline='builtin.module(func.func(transfuse-select-attention{algorithm=memory_efficient kv-block=32}))' | FileCheck %s --check-prefix=FORCED
// RUN: not transfuse-opt %s -pass-pipeline='builtin.module(func.func(transfuse-select-attention{algorithm=flash}))' 2>&1 | FileCheck %s --check-prefix=BAD

// 1 x 4 x 128 x 128 fp32 scores are 256 KiB: materialized.
// CHECK-LABEL: func @short
// CHECK: algorithm = "materialized"
// CHECK-SAME: reason = "the scores take 262144 bytes <= 8388608"
// FORCED-LABEL: func @short
// FORCED: algorithm = "memory_efficient", kv_block = 32
// FORCED-SAME: reason = "forced by --attention=memory_efficient"
func.func @short(%q: tensor<1x4x128x64xf32>, %k: tensor<1x4x128x64xf32>, %v: tensor<1x4x128x64xf32>) -> tensor<1x4x128x64xf32> {
  %0 = transformer.attention %q, %k, %v {scale = 0.125 : f32} : (tensor<1x4x128x64xf32>, tensor<1x4x128x64xf32>, tensor<1x4x128x64xf32>) -> tensor<1x4x128x64xf32>
  return %0 : tensor<1x4x128x64xf32>
}

// 8k tokens: 1 GiB of scores, so blocks of keys.
// CHECK-LABEL: func @long
// CHECK: algorithm = "memory_efficient"
// CHECK-SAME: reason = "the scores would take 1073741824 bytes > 8388608; blocks of 64 keys need B*H*Sq*130 floats"
func.func @long(%q: tensor<1x4x8192x64xf32>, %k: tensor<1x4x8192x64xf32>, %v: tensor<1x4x8192x64xf32>) -> tensor<1x4x8192x64xf32> {
  %0 = transformer.attention %q, %k, %v {scale = 0.125 : f32} : (tensor<1x4x8192x64xf32>, tensor<1x4x8192x64xf32>, tensor<1x4x8192x64xf32>) -> tensor<1x4x8192x64xf32>
  return %0 : tensor<1x4x8192x64xf32>
}

// A symbolic length: decided per call.
// CHECK-LABEL: func @symbolic
// CHECK: algorithm = "by_length"
// CHECK-SAME: reason = "a length is only known at run time
func.func @symbolic(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %0 = transformer.attention %q, %k, %v {scale = 0.125 : f32} : (tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32>
  return %0 : tensor<?x4x?x64xf32>
}

// BAD: algorithm must be auto, materialized or memory_efficient, not 'flash'
