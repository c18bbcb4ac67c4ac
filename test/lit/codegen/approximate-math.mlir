// RUN: transfuse-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(transfuse-cpu-approximate-math))' | FileCheck %s

// f32 erf, exp and tanh become arithmetic (no libm call is left), so the
// loops around them can vectorize.
// CHECK-LABEL: func.func @f32_math
// CHECK-NOT: math.erf
// CHECK-NOT: math.exp
// CHECK-NOT: math.tanh
// CHECK: arith.mulf
// CHECK: return
func.func @f32_math(%x: f32) -> (f32, f32, f32) {
  %e = math.erf %x : f32
  %x2 = math.exp %x : f32
  %t = math.tanh %x : f32
  return %e, %x2, %t : f32, f32, f32
}

// -----

// Other element types and other math ops stay libm calls.
// CHECK-LABEL: func.func @kept
// CHECK: math.erf %{{.*}} : f64
// CHECK: math.exp %{{.*}} : f64
// CHECK: math.log %{{.*}} : f32
func.func @kept(%x: f64, %y: f32) -> (f64, f64, f32) {
  %e = math.erf %x : f64
  %x2 = math.exp %x : f64
  %l = math.log %y : f32
  return %e, %x2, %l : f64, f64, f32
}
