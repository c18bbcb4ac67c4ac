//===- MatmulToMicrokernel.cpp - f32 linalg.matmul to the runtime GEMM ----===//
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "transfuse/bf16_panels.h"
#include "transfuse/f32_panels.h"
#include "transfuse/linear_flags.h"
#include "transfuse/q4_panels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <cmath>
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
constexpr llvm::StringLiteral kLinearMicrokernel =
    "transfuse_linear_f32_packed";
constexpr llvm::StringLiteral kLinearBf16Microkernel =
    "transfuse_linear_bf16_packed";
constexpr llvm::StringLiteral kQ4Microkernel = "transfuse_linear_q4";
/// Columns per panel of the microkernels (kNr in runtime/src/gemm.cpp; the
/// bf16 layout's panels are as wide).
constexpr int64_t kPanel = 32;
static_assert(kPanel == transfuse::bf16::kPanelCols &&
              kPanel == transfuse::f32::kPanelCols);

/// The f32 values of a constant global's initializer: its resource blob's
/// bytes in place, or a dense attribute's values (a splat expanded) copied
/// into `storage`. Null where there are none.
const float *globalValues(memref::GlobalOp g, std::vector<float> &storage) {
  auto init = g.getInitialValue();
  if (!g.getConstant() || !init)
    return nullptr;
  int64_t n = g.getType().getNumElements();
  if (auto r = dyn_cast<DenseResourceElementsAttr>(*init)) {
    AsmResourceBlob *blob = r.getRawHandle().getBlob();
    if (!blob || blob->getData().size() != (size_t)n * sizeof(float) ||
        reinterpret_cast<uintptr_t>(blob->getData().data()) % alignof(float))
      return nullptr;
    return reinterpret_cast<const float *>(blob->getData().data());
  }
  if (auto d = dyn_cast<DenseFPElementsAttr>(*init)) {
    storage.reserve(n);
    for (float x : d.getValues<float>())
      storage.push_back(x);
    return storage.data();
  }
  return nullptr;
}

/// A private constant global `name` of `type` beside `g`, holding `blob`
/// (64-byte aligned), entered in `symbols`: a weight's packed form.
memref::GlobalOp blobGlobal(memref::GlobalOp g, StringRef name, MemRefType type,
                            AsmResourceBlob blob, SymbolTable &symbols) {
  auto value = DenseResourceElementsAttr::get(
      RankedTensorType::get(type.getShape(), type.getElementType()), name,
      std::move(blob));
  OpBuilder b(g);
  auto global = memref::GlobalOp::create(
      b, g.getLoc(), name, b.getStringAttr("private"), type, value,
      /*constant=*/true, b.getI64IntegerAttr(64));
  symbols.insert(global);
  return global;
}

/// The global holding `g` ([K, N]) in the microkernel's layout, created once
/// per weight: f32 panels [ceil(N / 32)][K][32], zero padded, or with
/// `bf16` the AMX tile layout of bf16_panels.h, [ceil(N / 32)][Kp][32].
/// The layout is written straight into the new global's blob, a panel at a
/// time (f32::packB, bf16::pack). Through a copy of the values, a
/// zeroed vector filled element by element across the panels and a copy
/// into the blob, a 2.4 GB weight's lowering took 13.7 s and the compiler
/// peaked at 9.6 GB; this way 1.8-2.0 s and 4.9 GB. bert-base's .so is the
/// same to the byte.
memref::GlobalOp packedGlobal(memref::GlobalOp g, bool bf16,
                              SymbolTable &symbols) {
  std::string name =
      (g.getSymName() + (bf16 ? "_packed_bf16" : "_packed")).str();
  if (auto existing = symbols.lookup<memref::GlobalOp>(name))
    return existing;
  std::vector<float> storage;
  const float *values = globalValues(g, storage);
  if (!values)
    return {};
  int64_t k = g.getType().getDimSize(0), n = g.getType().getDimSize(1);
  int64_t panels = (n + kPanel - 1) / kPanel;
  int64_t kp = bf16 ? transfuse::bf16::paddedK(k) : k;
  MLIRContext *ctx = g.getContext();
  Type elem = bf16 ? Type(BFloat16Type::get(ctx)) : Float32Type::get(ctx);
  size_t elemBytes = bf16 ? sizeof(uint16_t) : sizeof(float);
  AsmResourceBlob blob =
      HeapAsmResourceBlob::allocate(panels * kp * kPanel * elemBytes, 64);
  char *out = blob.getMutableData().data();
  if (bf16) {
    transfuse::bf16::pack(values, k, n, n, reinterpret_cast<uint16_t *>(out));
  } else {
    transfuse::f32::packB(values, k, n, n, reinterpret_cast<float *>(out));
  }
  return blobGlobal(g, name, MemRefType::get({panels, kp, kPanel}, elem),
                    std::move(blob), symbols);
}

/// The globals holding `g` ([K, N]) as 4-bit codes and their scales and
/// zero points (transfuse/q4_panels.h), created once per weight; none
/// (nulls) where some block of 32 rows of a column is not a 4-bit code
/// times a scale to the bit (q4::quantize), which a weight is only where
/// it was made so: MatMulNBits' weights, which the importer dequantizes.
/// A weight of fewer than 32 rows stays f32 (one short block).
std::pair<memref::GlobalOp, memref::GlobalOp> q4Globals(memref::GlobalOp g,
                                                        SymbolTable &symbols) {
  namespace q4 = transfuse::q4;
  std::string codesName = (g.getSymName() + "_q4codes").str(),
              paramsName = (g.getSymName() + "_q4params").str();
  auto codes = symbols.lookup<memref::GlobalOp>(codesName);
  auto params = symbols.lookup<memref::GlobalOp>(paramsName);
  if (codes && params)
    return {codes, params};
  int64_t k = g.getType().getDimSize(0), n = g.getType().getDimSize(1);
  if (k < q4::kBlock)
    return {};
  std::vector<float> storage;
  const float *values = globalValues(g, storage);
  if (!values)
    return {};
  // Most weights fail on their first block: that is tried before the
  // blobs are allocated (bert-base's would be 50 MB).
  float first[q4::kBlock], s, z;
  uint8_t codes0[q4::kBlock];
  for (int64_t i = 0; i < q4::kBlock; ++i)
    first[i] = values[i * n];
  if (!q4::fitBlock(first, q4::kBlock, s, z, codes0))
    return {};
  AsmResourceBlob codeBlob =
      HeapAsmResourceBlob::allocate(q4::codeBytes(k, n), 64);
  AsmResourceBlob paramBlob =
      HeapAsmResourceBlob::allocate(q4::paramCount(k, n) * sizeof(float), 64);
  if (!q4::quantize(
          values, k, n, n,
          reinterpret_cast<uint8_t *>(codeBlob.getMutableData().data()),
          reinterpret_cast<float *>(paramBlob.getMutableData().data())))
    return {};
  MLIRContext *ctx = g.getContext();
  codes = blobGlobal(
      g, codesName,
      MemRefType::get({q4::codeBytes(k, n)}, IntegerType::get(ctx, 8)),
      std::move(codeBlob), symbols);
  params =
      blobGlobal(g, paramsName,
                 MemRefType::get({q4::paramCount(k, n)}, Float32Type::get(ctx)),
                 std::move(paramBlob), symbols);
  return {codes, params};
}

/// A `linear`'s epilogue as LowerLinear writes it: an elementwise
/// linalg.generic over the product (seen through reshapes) computing
/// act(product + bias) + residual, which the runtime can apply to each tile
/// of C itself (`transfuse_linear_f32_packed`, runtime/src/epilogue.cpp).
struct Epilogue {
  linalg::GenericOp op;
  Value bias, residual; // null when absent
  int64_t act = 0;      // Epilogue::Act in runtime/src/gemm.h
  Value out;            // the generic's output: a fresh buffer
};

/// Matches an epilogue body's ops: each matcher returns whether `v` is the
/// expected tree, recording its ops in `ops`, which is restored on failure.
struct BodyMatcher {
  SmallVector<Operation *> ops;

  bool constant(Value v, double expect) {
    FloatAttr attr;
    if (!matchPattern(v, m_Constant(&attr)))
      return false;
    return std::abs(attr.getValueAsDouble() - expect) <=
           1e-6 * std::abs(expect);
  }
  /// v = OpTy(lhs, rhs) with the operands in either order.
  template <typename OpTy>
  bool binary(Value v, function_ref<bool(Value)> lhs,
              function_ref<bool(Value)> rhs) {
    auto op = v.getDefiningOp<OpTy>();
    if (!op)
      return false;
    size_t mark = ops.size();
    for (bool swap : {false, true}) {
      Value a = op->getOperand(swap ? 1 : 0), b = op->getOperand(swap ? 0 : 1);
      if (lhs(a) && rhs(b)) {
        ops.push_back(op);
        return true;
      }
      ops.truncate(mark);
      if (!op->template hasTrait<OpTrait::IsCommutative>())
        break;
    }
    return false;
  }
  template <typename OpTy> bool unary(Value v, function_ref<bool(Value)> in) {
    auto op = v.getDefiningOp<OpTy>();
    if (!op || !in(op->getOperand(0)))
      return false;
    ops.push_back(op);
    return true;
  }
  /// v = act(t) for one of applyActivation's activations (LowerFused.cpp),
  /// its code in `act`.
  bool activation(Value v, Value t, int64_t &act) {
    auto isT = [&](Value x) { return x == t; };
    auto c = [&](double k) {
      return [this, k](Value x) { return constant(x, k); };
    };
    auto half = [&](Value x) { return binary<arith::MulFOp>(x, isT, c(0.5)); };
    size_t mark = ops.size();
    auto attempt = [&](int64_t code, bool matched) {
      if (matched)
        act = code;
      else
        ops.truncate(mark);
      return matched;
    };
    if (attempt(0, v == t))
      return true;
    if (attempt(1, binary<arith::MaximumFOp>(v, isT, c(0.0))))
      return true;
    // gelu: (t * 0.5) * (erf(t * 1/sqrt(2)) + 1)
    if (attempt(2, binary<arith::MulFOp>(v, half, [&](Value s) {
                  return binary<arith::AddFOp>(
                      s,
                      [&](Value e) {
                        return unary<math::ErfOp>(e, [&](Value x) {
                          return binary<arith::MulFOp>(x, isT, c(M_SQRT1_2));
                        });
                      },
                      c(1.0));
                })))
      return true;
    // gelu_tanh: (t * 0.5) * (tanh((t + t*t*t * 0.044715) * sqrt(2/pi)) + 1)
    auto cube = [&](Value x) {
      return binary<arith::MulFOp>(
          x, [&](Value sq) { return binary<arith::MulFOp>(sq, isT, isT); },
          isT);
    };
    auto inner = [&](Value x) {
      return binary<arith::AddFOp>(x, isT, [&](Value y) {
        return binary<arith::MulFOp>(y, cube, c(0.044715));
      });
    };
    if (attempt(3, binary<arith::MulFOp>(v, half, [&](Value s) {
                  return binary<arith::AddFOp>(
                      s,
                      [&](Value th) {
                        return unary<math::TanhOp>(th, [&](Value x) {
                          return binary<arith::MulFOp>(
                              x, inner, c(std::sqrt(2.0 / M_PI)));
                        });
                      },
                      c(1.0));
                })))
      return true;
    // silu: t / (exp(-t) + 1)
    return attempt(4, binary<arith::DivFOp>(v, isT, [&](Value d) {
                     return binary<arith::AddFOp>(
                         d,
                         [&](Value e) {
                           return unary<math::ExpOp>(e, [&](Value x) {
                             return unary<arith::NegFOp>(x, isT);
                           });
                         },
                         c(1.0));
                   }));
  }
};

/// Views that only reshape: the product is seen through these.
bool isReshape(Operation *op) {
  return isa<memref::ReshapeOp, memref::ExpandShapeOp, memref::CollapseShapeOp>(
      op);
}

/// The epilogue that reads `mm`'s product C (a fresh buffer, filled and
/// then written by `mm` alone) and nothing else does, when the runtime can
/// apply it instead: same block, no write to memory between the product
/// and the epilogue other than the reshapes' shape operands, an output
/// that is a fresh buffer with the identity layout (so that it aliases no
/// operand and collapses to [M, N]), and a residual with that layout too.
std::optional<Epilogue> matchEpilogue(linalg::MatmulOp mm, Value c) {
  if (!c.getDefiningOp<memref::AllocOp>())
    return std::nullopt;
  // Follow C through reshapes to its one reader.
  Value prod = c;
  Operation *reader = nullptr;
  for (;;) {
    SmallVector<Operation *> users;
    for (Operation *u : prod.getUsers())
      if (u != mm)
        users.push_back(u);
    if (users.size() != 1)
      return std::nullopt;
    reader = users.front();
    if (!isReshape(reader) || reader->getOperand(0) != prod)
      break;
    prod = reader->getResult(0);
  }
  auto generic = dyn_cast<linalg::GenericOp>(reader);
  if (!generic || generic->getBlock() != mm->getBlock() ||
      generic.getNumDpsInits() != 1 || !generic.hasPureBufferSemantics() ||
      generic.getNumParallelLoops() != generic.getNumLoops())
    return std::nullopt;
  auto prodType = cast<MemRefType>(prod.getType());
  int64_t rank = prodType.getRank(),
          n = cast<MemRefType>(c.getType()).getDimSize(1);
  if (rank < 2 || prodType.getDimSize(rank - 1) != n ||
      ShapedType::isDynamic(n))
    return std::nullopt;
  Epilogue ep;
  ep.op = generic;
  ep.out = generic.getDpsInits()[0];
  auto outType = cast<MemRefType>(ep.out.getType());
  if (!ep.out.getDefiningOp<memref::AllocOp>() ||
      !outType.getLayout().isIdentity() ||
      outType.getShape() != prodType.getShape() ||
      !generic.getMatchingIndexingMap(generic.getDpsInitOperand(0))
           .isIdentity())
    return std::nullopt;
  // Inputs: the product (identity map), at most one bias ([N], read along
  // the last dim) and at most one residual (identity map, identity layout).
  Block &body = generic.getRegion().front();
  Value prodArg, biasArg, resArg;
  for (OpOperand *in : generic.getDpsInputOperands()) {
    AffineMap map = generic.getMatchingIndexingMap(in);
    Value arg = body.getArgument(in->getOperandNumber());
    auto type = dyn_cast<MemRefType>(in->get().getType());
    if (!type || !type.getElementType().isF32())
      return std::nullopt;
    if (in->get() == prod) {
      // The product once, elementwise (read twice, it would pass as its own
      // residual, which the call no longer writes).
      if (prodArg || !map.isIdentity())
        return std::nullopt;
      prodArg = arg;
    } else if (map.isIdentity() && !resArg && type.getLayout().isIdentity()) {
      resArg = arg;
      ep.residual = in->get();
    } else if (!biasArg && type.getRank() == 1 &&
               (type.getDimSize(0) == n || type.isDynamicDim(0)) &&
               map ==
                   AffineMap::get(
                       rank, 0, getAffineDimExpr(rank - 1, map.getContext()))) {
      biasArg = arg;
      ep.bias = in->get();
    } else {
      return std::nullopt;
    }
  }
  if (!prodArg)
    return std::nullopt;
  // The body: [v + residual] over act([prod + bias]), nothing else.
  BodyMatcher m;
  Value v = body.getTerminator()->getOperand(0);
  auto isRes = [&](Value x) { return x == resArg; };
  if (resArg && !m.binary<arith::AddFOp>(
                    v,
                    [&](Value x) {
                      v = x;
                      return true;
                    },
                    isRes))
    return std::nullopt;
  Value t = prodArg;
  if (biasArg) {
    // The activation's input: prod + bias.
    t = nullptr;
    for (Operation &op : body.without_terminator())
      if (auto add = dyn_cast<arith::AddFOp>(op))
        if ((add.getLhs() == prodArg && add.getRhs() == biasArg) ||
            (add.getLhs() == biasArg && add.getRhs() == prodArg))
          t = add;
    if (!t)
      return std::nullopt;
    m.ops.push_back(t.getDefiningOp());
  }
  if (!m.activation(v, t, ep.act))
    return std::nullopt;
  // Every op of the body matched (constants aside, which may sit inside).
  for (Operation &op : body.without_terminator())
    if (!op.hasTrait<OpTrait::ConstantLike>() &&
        !llvm::is_contained(m.ops, &op))
      return std::nullopt;
  // Nothing between the product and the epilogue writes memory, but for
  // the shape operands of the reshapes (fresh buffers only they read).
  for (Operation *op = mm->getNextNode(); op != generic;
       op = op->getNextNode()) {
    if (isMemoryEffectFree(op) || isReshape(op) || isa<memref::AllocOp>(op))
      continue;
    auto store = dyn_cast<memref::StoreOp>(op);
    if (store && store.getMemRef().getDefiningOp<memref::AllocOp>() &&
        llvm::all_of(store.getMemRef().getUsers(), [](Operation *u) {
          return isa<memref::StoreOp, memref::ReshapeOp>(u);
        }))
      continue;
    return std::nullopt;
  }
  return ep;
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
    auto strided1d = MemRefType::get(
        {dyn}, Float32Type::get(ctx),
        StridedLayoutAttr::get(ctx, dyn, ArrayRef<int64_t>{dyn}));
    auto panels = MemRefType::get({dyn, dyn, kPanel}, Float32Type::get(ctx));
    auto bf16Panels =
        MemRefType::get({dyn, dyn, kPanel}, BFloat16Type::get(ctx));
    OpBuilder top(ctx);
    auto declare = [&](StringRef name, TypeRange args) {
      return transfuse::cpu::declareRuntimeFunction(top, module, name, args);
    };
    SymbolTable symbols(module);
    llvm::StringMap<int64_t> blobUsers = countBlobUsers(module);
    for (linalg::MatmulOp mm : matmuls) {
      OpBuilder b(mm);
      auto cast = [&](Value v, Type t) -> Value {
        return v.getType() == t
                   ? v
                   : memref::CastOp::create(b, mm.getLoc(), t, v).getResult();
      };
      Value a = mm.getInputs()[0], w = mm.getInputs()[1],
            c = mm.getOutputs()[0];
      // C filled with +0 just before the product (a `linear`'s init, a
      // head's scores), with only ops that touch no memory (views of the
      // operands) in between: the kernel writes C instead of adding to it,
      // and the fill goes.
      bool accumulate = true;
      Operation *prev = mm->getPrevNode();
      while (prev && !isa<linalg::FillOp>(prev) && isMemoryEffectFree(prev))
        prev = prev->getPrevNode();
      if (auto fill = dyn_cast_or_null<linalg::FillOp>(prev))
        if (fill.hasPureBufferSemantics() && fill.getOutputs()[0] == c &&
            matchPattern(fill.getInputs()[0], m_PosZeroFloat())) {
          fill.erase();
          accumulate = false;
        }
      auto i64Const = [&](Location l, int64_t v) -> Value {
        return arith::ConstantOp::create(b, l, IntegerAttr::get(i64, v));
      };
      bool transposedB = isa<linalg::MatmulTransposeBOp>(mm.getOperation());
      // A constant weight: packed once, at compile time.
      memref::GlobalOp weight;
      if (auto get = w.getDefiningOp<memref::GetGlobalOp>();
          get && !transposedB)
        weight = symbols.lookup<memref::GlobalOp>(get.getName());
      // In f32, a weight that is 4-bit codes times scales (MatMulNBits')
      // is kept so (q4Globals) instead of as f32 panels.
      memref::GlobalOp packed;
      std::pair<memref::GlobalOp, memref::GlobalOp> q4;
      if (weight && weight.getType().hasStaticShape()) {
        if (!bf16 && int4)
          q4 = q4Globals(weight, symbols);
        if (!q4.first)
          packed = packedGlobal(weight, bf16, symbols);
      }
      bool constWeight = packed || q4.first;
      std::optional<Epilogue> ep;
      if (constWeight && !accumulate)
        ep = matchEpilogue(mm, c);
      // A bf16 product that writes C afresh without an epilogue is a linear
      // with none (flags 0): every bf16 product by a weight that writes C
      // goes through one entry, which transfuse-cpu-a-panels rewrites. A
      // 4-bit weight's product has one entry, epilogue or not.
      if (ep || (packed && bf16 && !accumulate) || q4.first) {
        // The epilogue goes into the call, which takes its place (nothing
        // in between writes memory) and writes its output as [M, N].
        Location loc = ep ? ep->op.getLoc() : mm.getLoc();
        if (ep)
          b.setInsertionPoint(ep->op);
        auto flat = [&](Value v) -> Value {
          auto t = llvm::cast<MemRefType>(v.getType());
          if (t.getRank() == 2)
            return v;
          SmallVector<ReassociationIndices> groups(2);
          for (int64_t d = 0; d + 1 < t.getRank(); ++d)
            groups[0].push_back(d);
          groups[1].push_back(t.getRank() - 1);
          return memref::CollapseShapeOp::create(b, loc, v, groups);
        };
        Value out = ep ? flat(ep->out) : c;
        Value bias = ep ? ep->bias : Value();
        if (!bias)
          bias = memref::AllocaOp::create(
              b, loc, MemRefType::get({0}, Float32Type::get(ctx)));
        Value residual = ep && ep->residual ? flat(ep->residual) : out;
        namespace flag = transfuse::linear;
        int64_t flags = ep ? ep->act | (ep->bias ? flag::kHasBias : 0) |
                                 (ep->residual ? flag::kHasResidual : 0)
                           : 0;
        if (q4.first) {
          auto codesType = MemRefType::get({dyn}, IntegerType::get(ctx, 8));
          auto paramsType = MemRefType::get({dyn}, Float32Type::get(ctx));
          Value codes = memref::GetGlobalOp::create(b, loc, q4.first.getType(),
                                                    q4.first.getSymName());
          Value params = memref::GetGlobalOp::create(
              b, loc, q4.second.getType(), q4.second.getSymName());
          func::CallOp::create(
              b, loc,
              declare(kQ4Microkernel, {strided, codesType, paramsType, strided,
                                       strided1d, strided, i64, i64}),
              ValueRange{cast(a, strided), cast(codes, codesType),
                         cast(params, paramsType), cast(out, strided),
                         cast(bias, strided1d), cast(residual, strided),
                         i64Const(loc, flags), i64Const(loc, accumulate)});
        } else {
          Value p = memref::GetGlobalOp::create(b, loc, packed.getType(),
                                                packed.getSymName());
          MemRefType layout = bf16 ? bf16Panels : panels;
          func::CallOp::create(
              b, loc,
              declare(bf16 ? kLinearBf16Microkernel : kLinearMicrokernel,
                      {strided, layout, strided, strided1d, strided, i64}),
              ValueRange{cast(a, strided), cast(p, layout), cast(out, strided),
                         cast(bias, strided1d), cast(residual, strided),
                         i64Const(loc, flags)});
        }
        if (ep)
          ep->op.erase();
      } else if (packed) {
        Value acc = i64Const(mm.getLoc(), accumulate);
        Value p = memref::GetGlobalOp::create(b, mm.getLoc(), packed.getType(),
                                              packed.getSymName());
        MemRefType layout = bf16 ? bf16Panels : panels;
        func::CallOp::create(
            b, mm.getLoc(),
            declare(bf16 ? kBf16Microkernel : kPackedMicrokernel,
                    {strided, layout, strided, i64}),
            ValueRange{cast(a, strided), cast(p, layout), cast(c, strided),
                       acc});
      } else {
        Value acc = i64Const(mm.getLoc(), accumulate);
        // B transposed: the kernel gets a view of w with its strides
        // swapped.
        Value bView = w;
        if (transposedB)
          bView = memref::TransposeOp::create(
              b, mm.getLoc(), w,
              AffineMapAttr::get(
                  AffineMap::getPermutationMap(ArrayRef<unsigned>{1, 0}, ctx)));
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
      // An unpacked weight no longer read anywhere leaves the model as soon
      // as its last product is rewritten, and its bytes with it: the
      // compiler held every weight twice, unpacked and packed, until the
      // end (bert-base: 440 MB of weights, 340 MB of them packed).
      if (constWeight && SymbolTable::symbolKnownUseEmpty(weight, module))
        dropWeight(weight, symbols, blobUsers);
    }
  }

  /// Counts, per resource blob, the attributes of `module`'s ops that hold
  /// it (a blob a fold reshaped into a second global has two).
  static llvm::StringMap<int64_t> countBlobUsers(ModuleOp module) {
    llvm::StringMap<int64_t> users;
    module.walk([&](Operation *op) {
      for (NamedAttribute a : op->getAttrs())
        if (auto r = dyn_cast<DenseResourceElementsAttr>(a.getValue()))
          ++users[r.getRawHandle().getKey()];
    });
    return users;
  }

  /// Erases `g` and frees its blob, unless another op's attribute holds
  /// the blob too.
  static void dropWeight(memref::GlobalOp g, SymbolTable &symbols,
                         llvm::StringMap<int64_t> &blobUsers) {
    auto value =
        dyn_cast_or_null<DenseResourceElementsAttr>(g.getInitialValueAttr());
    symbols.erase(g);
    if (!value)
      return;
    DenseResourceElementsHandle handle = value.getRawHandle();
    if (--blobUsers[handle.getKey()] == 0)
      handle.getResource()->setBlob(AsmResourceBlob());
  }
};

} // namespace
