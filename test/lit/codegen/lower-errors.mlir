// RUN: not transfuse-opt %s -transfuse-cpu-lower-to-linalg 2>&1 | FileCheck %s

// Negative: an element type the lowering does not handle is reported, naming
// the op, instead of crashing or producing wrong code.
// CHECK: error: no CPU lowering for 'transformer.add'
func.func @complex_add(%a: tensor<4xcomplex<f32>>) -> tensor<4xcomplex<f32>> {
  %0 = transformer.add %a, %a : (tensor<4xcomplex<f32>>, tensor<4xcomplex<f32>>) -> tensor<4xcomplex<f32>>
  return %0 : tensor<4xcomplex<f32>>
}
