//===- MatmulToMicrokernel.cpp - f32 linalg.matmul to the runtime GEMM ----===//
#include "codegen/cpu/Passes.h"

#include "transfuse/bf16_panels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"

#include <cstring>
#include <optional>
#include <vector>

namespace transfuse::cpu {
#define GEN_PASS_DEF_MATMULTOMICROKERNEL
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kMicrokernel = "transfuse_matmul_f32";
constexpr llvm::StringLiteral kPackedMicrokernel =
    "transfuse_matmul_f32_packed";
constexpr llvm::StringLiteral kBf16Microkernel = "transfuse_matmul_bf16_packed";
/// Columns per panel of the microkernels (kNr in runtime/src/gemm.cpp; the
/// bf16 layout's panels are as wide).
constexpr int64_t kPanel = 32;
static_assert(kPanel == transfuse::bf16::kPanelCols);

/// The f32 values of a constant global's initializer (a splat expanded).
std::optional<std::vector<float>> globalValues(memref::GlobalOp g) {
  auto init = g.getInitialValue();
  if (!g.getConstant() || !init)
    return std::nullopt;
  auto type = g.getType();
  int64_t n = type.getNumElements();
  if (auto r = dyn_cast<DenseResourceElementsAttr>(*init)) {
    AsmResourceBlob *blob = r.getRawHandle().getBlob();
    if (!blob || blob->getData().size() != (size_t)n * sizeof(float))
      return std::nullopt;
    std::vector<float> v(n);
    std::memcpy(v.data(), blob->getData().data(), n * sizeof(float));
    return v;
  }
  if (auto d = dyn_cast<DenseFPElementsAttr>(*init)) {
    std::vector<float> v;
    v.reserve(n);
    for (float x : d.getValues<float>())
      v.push_back(x);
    return v;
  }
  return std::nullopt;
}

/// A private constant global `name` of `type` holding `values`, inserted
/// before `next`.
template <typename T>
memref::GlobalOp createConstant(memref::GlobalOp next, StringRef name,
                                MemRefType type, const std::vector<T> &values,
                                SymbolTable &symbols) {
  ArrayRef<char> bytes(reinterpret_cast<const char *>(values.data()),
                       values.size() * sizeof(T));
  auto tensorType =
      RankedTensorType::get(type.getShape(), type.getElementType());
  auto blob = HeapAsmResourceBlob::allocateAndCopyInferAlign<char>(
      bytes, /*dataIsMutable=*/false);
  auto value =
      DenseResourceElementsAttr::get(tensorType, name, std::move(blob));
  OpBuilder b(next);
  auto global = memref::GlobalOp::create(
      b, next.getLoc(), name, b.getStringAttr("private"), type, value,
      /*constant=*/true, b.getI64IntegerAttr(64));
  symbols.insert(global);
  return global;
}

/// The global holding `g` ([K, N]) in the microkernel's layout, created once
/// per weight: f32 panels [ceil(N / 32)][K][32], zero padded, or with
/// `bf16` the AMX tile layout of bf16_panels.h, [ceil(N / 32)][Kp][32].
memref::GlobalOp packedGlobal(memref::GlobalOp g, bool bf16,
                              SymbolTable &symbols) {
  std::string name =
      (g.getSymName() + (bf16 ? "_packed_bf16" : "_packed")).str();
  if (auto existing = symbols.lookup<memref::GlobalOp>(name))
    return existing;
  auto values = globalValues(g);
  if (!values)
    return {};
  int64_t k = g.getType().getDimSize(0), n = g.getType().getDimSize(1);
  int64_t panels = (n + kPanel - 1) / kPanel;
  MLIRContext *ctx = g.getContext();
  if (bf16) {
    int64_t kp = transfuse::bf16::paddedK(k);
    std::vector<uint16_t> packed(panels * kp * kPanel);
    transfuse::bf16::pack(values->data(), k, n, n, packed.data());
    auto type = MemRefType::get({panels, kp, kPanel}, BFloat16Type::get(ctx));
    return createConstant(g, name, type, packed, symbols);
  }
  std::vector<float> packed(panels * k * kPanel, 0.0f);
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j)
      packed[(j / kPanel) * k * kPanel + p * kPanel + j % kPanel] =
          (*values)[p * n + j];
  auto type = MemRefType::get({panels, k, kPanel}, Float32Type::get(ctx));
  return createConstant(g, name, type, packed, symbols);
}

bool isF32Memref(Value v) {
  auto t = dyn_cast<MemRefType>(v.getType());
  return t && t.getRank() == 2 && t.getElementType().isF32();
}

struct MatmulToMicrokernelPass
    : transfuse::cpu::impl::MatmulToMicrokernelBase<MatmulToMicrokernelPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!transfuse::cpu::isKnownPrecision(precision)) {
      module.emitError() << "transfuse-cpu-matmul-to-microkernel: precision '"
                         << precision << "' is not f32 or bf16";
      return signalPassFailure();
    }
    bool bf16 = precision == "bf16";
    SmallVector<linalg::MatmulOp> matmuls;
    // Plain products, and products by a transposed B (attention's scores,
    // Q K^T), which the runtime reads through a transposed view.
    module.walk([&](linalg::MatmulOp mm) {
      bool transposedB = isa<linalg::MatmulTransposeBOp>(mm.getOperation());
      if (mm.hasPureBufferSemantics() &&
          (!mm.hasUserDefinedMaps() || transposedB) &&
          llvm::all_of(mm->getOperands(), isF32Memref))
        matmuls.push_back(mm);
    });
    if (matmuls.empty())
      return;
    MLIRContext *ctx = &getContext();
    Type i64 = IntegerType::get(ctx, 64);
    int64_t dyn = ShapedType::kDynamic;
    auto strided = MemRefType::get(
        {dyn, dyn}, Float32Type::get(ctx),
        StridedLayoutAttr::get(ctx, dyn, ArrayRef<int64_t>{dyn, dyn}));
    auto panels = MemRefType::get({dyn, dyn, kPanel}, Float32Type::get(ctx));
    auto bf16Panels =
        MemRefType::get({dyn, dyn, kPanel}, BFloat16Type::get(ctx));
    auto declare = [&](StringRef name, TypeRange args) {
      if (auto f = module.lookupSymbol<func::FuncOp>(name))
        return f;
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      auto f = func::FuncOp::create(b, module.getLoc(), name,
                                    FunctionType::get(ctx, args, {}));
      f.setPrivate();
      f->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
      return f;
    };
    SymbolTable symbols(module);
    SmallVector<memref::GlobalOp> packedFrom;
    for (linalg::MatmulOp mm : matmuls) {
      OpBuilder b(mm);
      auto cast = [&](Value v, Type t) -> Value {
        return v.getType() == t
                   ? v
                   : memref::CastOp::create(b, mm.getLoc(), t, v).getResult();
      };
      Value a = mm.getInputs()[0], w = mm.getInputs()[1],
            c = mm.getOutputs()[0];
      // C filled with +0 just before the product (a `linear`'s init): the
      // kernel writes C instead of adding to it, and the fill goes.
      bool accumulate = true;
      if (auto fill = dyn_cast_or_null<linalg::FillOp>(mm->getPrevNode()))
        if (fill.hasPureBufferSemantics() && fill.getOutputs()[0] == c &&
            matchPattern(fill.getInputs()[0], m_PosZeroFloat())) {
          fill.erase();
          accumulate = false;
        }
      Value acc = arith::ConstantOp::create(
          b, mm.getLoc(), IntegerAttr::get(i64, accumulate ? 1 : 0));
      // B transposed: the kernel gets a view of w with its strides swapped.
      bool transposedB = isa<linalg::MatmulTransposeBOp>(mm.getOperation());
      Value bView = w;
      if (transposedB)
        bView = memref::TransposeOp::create(
            b, mm.getLoc(), w,
            AffineMapAttr::get(AffineMap::getPermutationMap(
                ArrayRef<unsigned>{1, 0}, ctx)));
      // A constant weight: packed once, at compile time.
      memref::GlobalOp weight;
      if (auto get = w.getDefiningOp<memref::GetGlobalOp>();
          get && !transposedB)
        weight = symbols.lookup<memref::GlobalOp>(get.getName());
      memref::GlobalOp packed;
      if (weight && weight.getType().hasStaticShape())
        packed = packedGlobal(weight, bf16, symbols);
      if (packed) {
        Value p = memref::GetGlobalOp::create(b, mm.getLoc(), packed.getType(),
                                              packed.getSymName());
        MemRefType layout = bf16 ? bf16Panels : panels;
        func::CallOp::create(
            b, mm.getLoc(),
            declare(bf16 ? kBf16Microkernel : kPackedMicrokernel,
                    {strided, layout, strided, i64}),
            ValueRange{cast(a, strided), cast(p, layout), cast(c, strided),
                       acc});
        packedFrom.push_back(weight);
      } else {
        func::CallOp::create(
            b, mm.getLoc(),
            declare(kMicrokernel, {strided, strided, strided, i64}),
            ValueRange{cast(a, strided), cast(bView, strided), cast(c, strided),
                       acc});
      }
      Operation *wDef = w.getDefiningOp();
      mm.erase();
      if (wDef && isa<memref::GetGlobalOp>(wDef) && wDef->use_empty())
        wDef->erase();
    }
    // Unpacked weights no longer read anywhere are dropped from the model.
    for (memref::GlobalOp g : packedFrom)
      if (g && SymbolTable::symbolKnownUseEmpty(g, module)) {
        symbols.erase(g);
        for (auto &other : packedFrom)
          if (other == g)
            other = {};
      }
  }
};

} // namespace
