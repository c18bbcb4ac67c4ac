//===- LowerFused.cpp - fused transformer ops to linalg on tensors --------===//
//
// layer_norm, rms_norm, gelu, silu, rotary_embedding, linear and attention. The
// attention lowering is one loop over blocks of keys with an online softmax;
// the materialized algorithm is the same loop with a single block of all Sk
// keys, so both algorithms share one verified code path and the choice is only
// the block size (decided at compile time, or at run time for `by_length`).
// Its two contractions, Q x K^T and P x V, are one linalg.matmul per (batch,
// head) on 2-D slices (Q x K^T with the transpose-B maps, on K as it is), so
// that f32 ones run on the runtime's GEMM (transfuse-cpu-matmul-to-
// microkernel); softmax and rescaling are linalg.generic.
//
// With the pass's `attention-kernel` option (the CPU pipeline sets it unless
// --attention is given), an f32 attention with at most two masks becomes
// instead one call to the runtime's fused kernel,
// transfuse_attention_f32 (runtime/src/attention.cpp), on read-only buffers
// of its operands and a fresh buffer for its result; the algorithm
// attribute does not matter to it (its memory is linear in Sk either way);
// `bf16-attention` sets the call's flag for bf16 products. With `norm-kernel`,
// an f32 layer_norm or rms_norm (rank at most 4, 1-D scale and bias) is one
// call of the runtime's transfuse_norm_f32 (runtime/src/norms.cpp) the same
// way.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/RuntimeKernels.h"
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

#include <cmath>

using namespace mlir;
using namespace transfuse;
using namespace transfuse::cpu;
using namespace transfuse::transformer;

namespace {

/// A call of one of the runtime's fused kernels (attention.cpp, norms.cpp)
/// in the middle of tensor code: operands as read-only buffers of any
/// strides (`bufferization.to_buffer read_only`, cast to a fully dynamic
/// layout), results in fresh 64-byte aligned buffers that become tensors
/// (`bufferization.to_tensor restrict writable`), and the callee declared
/// once per module with the C interface.
struct RuntimeKernelCall {
  PatternRewriter &rw;
  Location loc;
  RuntimeKernelCall(PatternRewriter &rw, Location loc) : rw(rw), loc(loc) {}

  /// memref<?x...xf32, strided<[?, ...], offset: ?>> of `rank`.
  MemRefType anyType(int64_t rank) {
    const int64_t dyn = ShapedType::kDynamic;
    SmallVector<int64_t> dims(rank, dyn);
    return MemRefType::get(
        dims, rw.getF32Type(),
        StridedLayoutAttr::get(rw.getContext(), dyn, dims));
  }
  Value any(Value memref) {
    return memref::CastOp::create(
        rw, loc, anyType(cast<MemRefType>(memref.getType()).getRank()),
        memref);
  }
  Value read(Value t) {
    auto tt = tensorType(t);
    const int64_t dyn = ShapedType::kDynamic;
    auto type = MemRefType::get(
        tt.getShape(), tt.getElementType(),
        StridedLayoutAttr::get(rw.getContext(), dyn,
                               SmallVector<int64_t>(tt.getRank(), dyn)));
    return any(bufferization::ToBufferOp::create(rw, loc, type, t,
                                                 /*read_only=*/true));
  }
  /// A rank-4 mask; one that is a `toeplitz` of a [B, H, L] tensor is a
  /// view of that tensor's buffer, its rows one element apart backwards
  /// (row i starts at element rows - 1 - i), so the [B, H, Sq, Sk] bias is
  /// never built: 49 KB a layer instead of 12.6 MB for t5-base at 512
  /// tokens. Anything else as read().
  Value readMask(Value t) {
    auto toeplitz = t.getDefiningOp<ToeplitzOp>();
    if (!toeplitz || tensorType(t).getRank() != 4)
      return read(t);
    Value in = read(toeplitz.getInput());
    auto meta = memref::ExtractStridedMetadataOp::create(rw, loc, in);
    Value rows = extractIndex(rw, loc, toeplitz.getSizes(), 0),
          cols = extractIndex(rw, loc, toeplitz.getSizes(), 1);
    ValueRange sizes = meta.getSizes(), strides = meta.getStrides();
    Value step = strides[2];
    Value offset = arith::AddIOp::create(
        rw, loc, meta.getOffset(),
        arith::MulIOp::create(
            rw, loc, arith::SubIOp::create(rw, loc, rows, cIdx(rw, loc, 1)),
            step));
    Value back = arith::SubIOp::create(rw, loc, cIdx(rw, loc, 0), step);
    SmallVector<OpFoldResult> viewSizes{sizes[0], sizes[1], rows, cols},
        viewStrides{strides[0], strides[1], back, step};
    return any(memref::ReinterpretCastOp::create(
        rw, loc, anyType(4), in, OpFoldResult(offset), viewSizes, viewStrides));
  }
  /// The dims of a mask (as tensor.dim would give them), a `toeplitz`'s
  /// from its operands, so that it keeps no reader once readMask took it.
  SmallVector<Value> maskDims(Value t) {
    auto toeplitz = t.getDefiningOp<ToeplitzOp>();
    if (!toeplitz)
      return getDimValues(rw, loc, t);
    SmallVector<Value> dims = getDimValues(rw, loc, toeplitz.getInput());
    dims.back() = extractIndex(rw, loc, toeplitz.getSizes(), 0);
    dims.push_back(extractIndex(rw, loc, toeplitz.getSizes(), 1));
    return dims;
  }
  /// The input of `op` when it is a (0, 2, 1, 3) transpose (heads and
  /// sequence swapped), graph op or linalg; else null.
  static Value swappedHeads(Operation *op) {
    static constexpr int64_t kSwap[] = {0, 2, 1, 3};
    if (auto tr = dyn_cast_or_null<linalg::TransposeOp>(op))
      return tr.getPermutation() == ArrayRef<int64_t>(kSwap) ? tr.getInput()
                                                             : Value();
    if (auto tr = dyn_cast_or_null<transformer::TransposeOp>(op))
      return tr.getPerm() == ArrayRef<int64_t>(kSwap) ? tr.getInput() : Value();
    return Value();
  }
  /// `buffer` with dims 1 and 2 swapped, as a view.
  Value swapView(Value buffer) {
    AffineMap swap = AffineMap::getPermutationMap(
        ArrayRef<unsigned>{0, 2, 1, 3}, rw.getContext());
    return any(
        memref::TransposeOp::create(rw, loc, buffer, AffineMapAttr::get(swap)));
  }
  /// A [B, H, S, D] operand that is the (0, 2, 1, 3) transpose of a
  /// [B, S, H, D] tensor (the heads of a projection's output): a transposed
  /// view of that tensor's buffer, so the transpose is never copied;
  /// anything else as read().
  Value readHeads(Value t) {
    Value src = swappedHeads(t.getDefiningOp());
    return src ? swapView(read(src)) : read(t);
  }
  Value alloc(RankedTensorType type, ArrayRef<Value> dims) {
    SmallVector<Value> dynSizes;
    for (auto [i, d] : llvm::enumerate(type.getShape()))
      if (ShapedType::isDynamic(d))
        dynSizes.push_back(dims[i]);
    return memref::AllocOp::create(
        rw, loc, MemRefType::get(type.getShape(), type.getElementType()),
        dynSizes, rw.getI64IntegerAttr(64));
  }
  Value tensorOf(Value buffer, RankedTensorType type) {
    return bufferization::ToTensorOp::create(rw, loc, type, buffer,
                                             /*restrict=*/true,
                                             /*writable=*/true);
  }
  Value i64(int64_t v) { return arith::ConstantIntOp::create(rw, loc, v, 64); }
  Value f32(float v) {
    return arith::ConstantOp::create(rw, loc, rw.getF32FloatAttr(v));
  }
  void call(Operation *at, StringRef name, ArrayRef<Value> args) {
    func::CallOp::create(
        rw, loc,
        declareRuntimeFunction(rw, at->getParentOfType<ModuleOp>(), name,
                               ValueRange(args).getTypes()),
        args);
  }
};

/// The activation `act` (relu, gelu, gelu_tanh, silu, none) of scalar `x`.
Value applyActivation(OpBuilder &b, Location l, Value x, StringRef act) {
  Type t = x.getType();
  if (act == "relu")
    return arith::MaximumFOp::create(b, l, x, scalarConstant(b, l, t, 0));
  if (act == "gelu") {
    Value e = math::ErfOp::create(
        b, l,
        arith::MulFOp::create(b, l, x, scalarConstant(b, l, t, M_SQRT1_2)));
    Value h = arith::MulFOp::create(b, l, x, scalarConstant(b, l, t, 0.5));
    return arith::MulFOp::create(
        b, l, h, arith::AddFOp::create(b, l, e, scalarConstant(b, l, t, 1)));
  }
  if (act == "gelu_tanh") {
    Value x3 =
        arith::MulFOp::create(b, l, arith::MulFOp::create(b, l, x, x), x);
    Value inner = arith::AddFOp::create(
        b, l, x,
        arith::MulFOp::create(b, l, x3, scalarConstant(b, l, t, 0.044715)));
    inner = arith::MulFOp::create(
        b, l, inner, scalarConstant(b, l, t, std::sqrt(2.0 / M_PI)));
    Value th = math::TanhOp::create(b, l, inner);
    Value h = arith::MulFOp::create(b, l, x, scalarConstant(b, l, t, 0.5));
    return arith::MulFOp::create(
        b, l, h, arith::AddFOp::create(b, l, th, scalarConstant(b, l, t, 1)));
  }
  if (act == "silu") {
    Value e = math::ExpOp::create(b, l, arith::NegFOp::create(b, l, x));
    return arith::DivFOp::create(
        b, l, x, arith::AddFOp::create(b, l, e, scalarConstant(b, l, t, 1)));
  }
  return x;
}

/// gelu and silu: one elementwise pass of applyActivation.
template <typename OpTy> struct LowerActivation : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op, PatternRewriter &rw) const override {
    StringRef act = "silu";
    if constexpr (std::is_same_v<OpTy, GeluOp>)
      act = op.getApproximate() == "tanh" ? "gelu_tanh" : "gelu";
    rw.replaceOp(op,
                 buildElementwise(rw, op.getLoc(), ValueRange{op.getInput()},
                                  tensorType(op.getResult()),
                                  [&](OpBuilder &b, Location l, ValueRange a) {
                                    return applyActivation(b, l, a[0], act);
                                  }));
    return success();
  }
};

/// The runtime's norm kernel (norms.cpp) for an f32 layer_norm or rms_norm
/// of rank at most 4 with a 1-D scale (and bias): tensors padded to rank 4
/// with leading 1s, the results reshaped back. Returns {} when the op does
/// not qualify (the caller generates loops).
SmallVector<Value> callNormKernel(PatternRewriter &rw, Operation *op, Value x,
                                  Value residual, Value scale, Value bias,
                                  bool rms, bool wantSum, double epsilon) {
  Location loc = op->getLoc();
  auto resultType = tensorType(op->getResult(0));
  if (!takesNormKernel(op))
    return {};
  // The residual broadcasts against the input (ONNX rules, right-aligned).
  Value c1 = cIdx(rw, loc, 1);
  SmallVector<Value> resultDims =
      residual ? broadcastDims(rw, loc, ValueRange{x, residual}, resultType)
               : getDimValues(rw, loc, x);
  if (residual) {
    Value ok = arith::ConstantIntOp::create(rw, loc, 1, 1);
    int64_t r = resultType.getRank();
    for (Value v : {x, residual}) {
      SmallVector<Value> d = getDimValues(rw, loc, v);
      for (int64_t j = 0; j < (int64_t)d.size(); ++j) {
        Value out = resultDims[r - d.size() + j];
        ok = arith::AndIOp::create(
            rw, loc, ok,
            arith::OrIOp::create(
                rw, loc,
                arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, d[j],
                                      out),
                arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, d[j],
                                      c1)));
      }
    }
    emitRuntimeCheck(rw, loc, ok,
                     "layer_norm: the residual does not broadcast against "
                     "the input");
  }
  // The kernel reads scale[j] and bias[j] for every column j (a length of 1
  // broadcasts).
  Value sbOk = arith::ConstantIntOp::create(rw, loc, 1, 1);
  bool sbKnown = true;
  int64_t last = resultType.getShape().back();
  for (Value v : {scale, bias}) {
    if (!v)
      continue;
    int64_t n = tensorType(v).getShape()[0];
    sbKnown &= !ShapedType::isDynamic(last) && (n == last || n == 1);
    Value len = getDimValues(rw, loc, v)[0];
    sbOk = arith::AndIOp::create(
        rw, loc, sbOk,
        arith::OrIOp::create(
            rw, loc,
            arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, len,
                                  resultDims.back()),
            arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, len, c1)));
  }
  if (!sbKnown)
    emitRuntimeCheck(rw, loc, sbOk,
                     (op->getName().stripDialect() +
                      ": the scale or bias length differs from the last dim")
                         .str());
  // v as rank 4: leading dims of 1.
  auto pad4 = [&](Value v, RankedTensorType t,
                  ArrayRef<Value> dims) -> std::pair<Value, RankedTensorType> {
    SmallVector<int64_t> shape(4 - t.getRank(), 1);
    shape.append(t.getShape().begin(), t.getShape().end());
    SmallVector<Value> d(4 - t.getRank(), c1);
    d.append(dims.begin(), dims.end());
    auto t4 = RankedTensorType::get(shape, t.getElementType());
    return {v ? reshapeTo(rw, loc, v, t4, d) : Value(), t4};
  };
  RuntimeKernelCall k(rw, loc);
  Value x4 = k.read(pad4(x, tensorType(x), getDimValues(rw, loc, x)).first);
  Value r4 = residual ? k.read(pad4(residual, tensorType(residual),
                                    getDimValues(rw, loc, residual))
                                   .first)
                      : x4;
  Value g = k.read(scale), b = bias ? k.read(bias) : g;
  RankedTensorType out4 = pad4(Value(), resultType, resultDims).second;
  SmallVector<Value> dims4(4 - resultType.getRank(), c1);
  dims4.append(resultDims.begin(), resultDims.end());
  Value y = k.alloc(out4, dims4), yArg = k.any(y);
  Value sum = wantSum ? k.alloc(out4, dims4) : y;
  int64_t flags = (residual ? 1 : 0) | (bias ? 2 : 0) | (wantSum ? 4 : 0) |
                  (rms ? 8 : 0);
  k.call(op, "transfuse_norm_f32",
         {x4, r4, g, b, yArg, wantSum ? k.any(sum) : yArg, k.f32(epsilon),
          k.i64(flags)});
  SmallVector<Value> results{
      reshapeTo(rw, loc, k.tensorOf(y, out4), resultType, resultDims)};
  if (wantSum)
    results.push_back(reshapeTo(rw, loc, k.tensorOf(sum, out4),
                                tensorType(op->getResult(1)), resultDims));
  return results;
}

struct LowerLayerNormOp : OpRewritePattern<LayerNormOp> {
  LowerLayerNormOp(MLIRContext *ctx, bool runtimeKernel)
      : OpRewritePattern(ctx), runtimeKernel(runtimeKernel) {}
  bool runtimeKernel;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rw) const override {
    if (runtimeKernel) {
      SmallVector<Value> results = callNormKernel(
          rw, op, op.getInput(), op.getResidual(), op.getScale(),
          op.getBias(), /*rms=*/false, op.getSum() != nullptr,
          op.getEpsilon().convertToDouble());
      if (!results.empty()) {
        rw.replaceOp(op, results);
        return success();
      }
    }
    Location loc = op.getLoc();
    Value x = op.getInput();
    auto t = tensorType(op.getResult());
    if (Value r = op.getResidual())
      x = buildElementwise(rw, loc, ValueRange{x, r}, t,
                           [](OpBuilder &b, Location l, ValueRange a) -> Value {
                             return arith::AddFOp::create(b, l, a[0], a[1]);
                           });
    Value y = buildLayerNorm(rw, loc, x, op.getScale(), op.getBias(), -1,
                             op.getEpsilon().convertToDouble());
    SmallVector<Value> results{y};
    if (op.getSum())
      results.push_back(x);
    rw.replaceOp(op, results);
    return success();
  }
};

struct LowerRmsNorm : OpRewritePattern<RmsNormOp> {
  LowerRmsNorm(MLIRContext *ctx, bool runtimeKernel)
      : OpRewritePattern(ctx), runtimeKernel(runtimeKernel) {}
  bool runtimeKernel;
  LogicalResult matchAndRewrite(RmsNormOp op,
                                PatternRewriter &rw) const override {
    if (runtimeKernel) {
      SmallVector<Value> results = callNormKernel(
          rw, op, op.getInput(), Value(), op.getScale(), Value(),
          /*rms=*/true, /*wantSum=*/false, op.getEpsilon().convertToDouble());
      if (!results.empty()) {
        rw.replaceOp(op, results);
        return success();
      }
    }
    Location loc = op.getLoc();
    Value x = op.getInput();
    auto t = tensorType(x);
    Type elem = t.getElementType();
    int64_t last = t.getRank() - 1;
    Value n = countOf(rw, loc, x, {last}, elem);
    Value eps =
        scalarConstant(rw, loc, elem, op.getEpsilon().convertToDouble());
    Value sq =
        buildElementwise(rw, loc, ValueRange{x}, t,
                         [](OpBuilder &b, Location l, ValueRange a) -> Value {
                           return arith::MulFOp::create(b, l, a[0], a[0]);
                         });
    Value ss = reduceKeepDims(rw, loc, sq, {last}, ReduceKind::Sum);
    Value out =
        buildElementwise(rw, loc, ValueRange{x, ss, op.getScale()}, t,
                         [&](OpBuilder &b, Location l, ValueRange a) -> Value {
                           Value ms = arith::AddFOp::create(
                               b, l, arith::DivFOp::create(b, l, a[1], n), eps);
                           Value y = arith::DivFOp::create(
                               b, l, a[0], math::SqrtOp::create(b, l, ms));
                           return arith::MulFOp::create(b, l, y, a[2]);
                         });
    rw.replaceOp(op, out);
    return success();
  }
};

/// One pass over the input: channel d < rotary_dim reads its partner
/// channel and its cos/sin entry with computed indices; the others copy.
struct LowerRotary : OpRewritePattern<RotaryEmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RotaryEmbeddingOp op,
                                PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    auto xt = tensorType(x);
    int64_t rank = xt.getRank(), r = op.getRotaryDim();
    bool interleaved = op.getInterleaved();
    SmallVector<Value> dims = getDimValues(rw, loc, x);
    Value c0 = cIdx(rw, loc, 0), c1 = cIdx(rw, loc, 1);
    // A cos/sin dim that is dynamic may be 1 (broadcast) or the input's.
    SmallVector<SmallVector<Value>> csDims;
    for (Value cs : {op.getCos(), op.getSin()}) {
      auto ct = tensorType(cs);
      SmallVector<Value> cd = getDimValues(rw, loc, cs);
      for (int64_t j = 0; j + 1 < ct.getRank(); ++j) {
        if (!ct.isDynamicDim(j))
          continue;
        Value xd = dims[rank - ct.getRank() + j];
        Value ok = arith::OrIOp::create(
            rw, loc,
            arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, cd[j], c1),
            arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, cd[j],
                                  xd));
        emitRuntimeCheck(rw, loc, ok,
                         "rotary_embedding: cos/sin do not broadcast to the "
                         "input");
      }
      if (ct.isDynamicDim(ct.getRank() - 1))
        emitRuntimeCheck(
            rw, loc,
            arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, cd.back(),
                                  cIdx(rw, loc, r)),
            "rotary_embedding: cos/sin do not have rotary_dim entries");
      csDims.push_back(cd);
    }
    if (xt.isDynamicDim(rank - 1))
      emitRuntimeCheck(rw, loc,
                       arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::uge,
                                             dims.back(), cIdx(rw, loc, r)),
                       "rotary_embedding: the input has fewer channels than "
                       "rotary_dim");
    Value init = createEmpty(rw, loc, xt, dims);
    SmallVector<Value, 2> cosSin{op.getCos(), op.getSin()};
    AffineMap id = rw.getMultiDimIdentityMap(rank);
    SmallVector<utils::IteratorType> par(rank, utils::IteratorType::parallel);
    Value out =
        linalg::GenericOp::create(
            rw, loc, TypeRange{xt}, ValueRange{x}, ValueRange{init},
            ArrayRef<AffineMap>{id, id}, par,
            [&](OpBuilder &b, Location l, ValueRange a) {
              SmallVector<Value> idx;
              for (int64_t i = 0; i < rank; ++i)
                idx.push_back(linalg::IndexOp::create(b, l, i));
              Value d = idx.back();
              auto cmp = [&](arith::CmpIPredicate p, Value u, Value v) {
                return arith::CmpIOp::create(b, l, p, u, v).getResult();
              };
              Value rotates = cmp(arith::CmpIPredicate::ult, d, cIdx(b, l, r));
              // Clamped so that pass-through channels still read in bounds.
              Value dc = arith::MinUIOp::create(b, l, d, cIdx(b, l, r - 1));
              Value first, partner;
              if (interleaved) {
                Value odd = arith::AndIOp::create(b, l, dc, c1);
                first = cmp(arith::CmpIPredicate::eq, odd, c0);
                partner = arith::XOrIOp::create(b, l, dc, c1);
              } else {
                Value half = cIdx(b, l, r / 2);
                first = cmp(arith::CmpIPredicate::ult, dc, half);
                partner = arith::SelectOp::create(
                    b, l, first, arith::AddIOp::create(b, l, dc, half),
                    arith::SubIOp::create(b, l, dc, half));
              }
              SmallVector<Value> pIdx(idx);
              pIdx.back() = partner;
              Value xp = tensor::ExtractOp::create(b, l, x, pIdx);
              xp = arith::SelectOp::create(b, l, first,
                                           arith::NegFOp::create(b, l, xp), xp);
              SmallVector<Value> cs;
              for (auto [k, v] : llvm::enumerate(cosSin)) {
                auto ct = tensorType(v);
                int64_t cr = ct.getRank();
                SmallVector<Value> cIdxs;
                for (int64_t j = 0; j + 1 < cr; ++j) {
                  Value at = idx[rank - cr + j];
                  if (ct.getDimSize(j) == 1)
                    at = c0;
                  else if (ct.isDynamicDim(j))
                    at = arith::SelectOp::create(
                        b, l, cmp(arith::CmpIPredicate::eq, csDims[k][j], c1),
                        c0, at);
                  cIdxs.push_back(at);
                }
                cIdxs.push_back(dc);
                cs.push_back(tensor::ExtractOp::create(b, l, v, cIdxs));
              }
              Value y = arith::AddFOp::create(
                  b, l, arith::MulFOp::create(b, l, a[0], cs[0]),
                  arith::MulFOp::create(b, l, xp, cs[1]));
              linalg::YieldOp::create(
                  b, l,
                  ValueRange{arith::SelectOp::create(b, l, rotates, y, a[0])});
            })
            .getResult(0);
    if (out.getType() != op.getType())
      out = tensor::CastOp::create(rw, loc, op.getType(), out);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  /// The product and its epilogue at `b`, on a numeric input (checked by
  /// matchAndRewrite); `shapes`: what the caller has checked of the
  /// residual's shape against the product's.
  static Value build(OpBuilder &b, Location loc, LinearOp op,
                     ElementwiseShapes shapes) {
    auto resultType = tensorType(op.getResult());
    auto productType = resultType;
    if (op.getGated()) {
      SmallVector<int64_t> shape(resultType.getShape());
      shape.back() = tensorType(op.getWeight()).getDimSize(1);
      productType = resultType.clone(shape);
    }
    Value y = buildMatMul(b, loc, op.getInput(), op.getWeight(), productType);
    assert(y && "a numeric matmul");
    StringRef act = op.getActivation();
    if (op.getBias() || op.getResidual() || act != "none" || op.getGated()) {
      // The whole epilogue in one pass over the product. A gated unit reads
      // the gate and the up halves of the product (and of the bias) as
      // slices, so the pass still writes each output once.
      SmallVector<Value> ins{y};
      Value bias = op.getBias();
      int64_t up = -1, biasGate = -1, biasUp = -1, res = -1;
      if (op.getGated()) {
        int64_t n = tensorType(op.getWeight()).getDimSize(1) / 2;
        auto half = [&](Value v, int64_t start) -> Value {
          auto t = tensorType(v);
          int64_t rank = t.getRank();
          SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes,
              strides(rank, b.getIndexAttr(1));
          SmallVector<Value> dims = getDimValues(b, loc, v);
          for (int64_t i = 0; i + 1 < rank; ++i)
            sizes.push_back(t.isDynamicDim(i)
                                ? OpFoldResult(dims[i])
                                : b.getIndexAttr(t.getDimSize(i)));
          sizes.push_back(b.getIndexAttr(n));
          offsets.back() = b.getIndexAttr(start);
          return tensor::ExtractSliceOp::create(b, loc, v, offsets, sizes,
                                                strides);
        };
        ins = {half(y, 0), half(y, n)};
        up = 1;
        if (bias) {
          biasGate = ins.size();
          ins.push_back(half(bias, 0));
          biasUp = ins.size();
          ins.push_back(half(bias, n));
        }
      } else if (bias) {
        biasGate = ins.size();
        ins.push_back(bias);
      }
      if (op.getResidual()) {
        res = ins.size();
        ins.push_back(op.getResidual());
      }
      auto body = [&](OpBuilder &bb, Location l, ValueRange a) -> Value {
        Value v = a[0];
        if (biasGate >= 0)
          v = arith::AddFOp::create(bb, l, v, a[biasGate]);
        v = applyActivation(bb, l, v, act);
        if (up >= 0) {
          Value u = a[up];
          if (biasUp >= 0)
            u = arith::AddFOp::create(bb, l, u, a[biasUp]);
          v = arith::MulFOp::create(bb, l, v, u);
        }
        if (res >= 0)
          v = arith::AddFOp::create(bb, l, v, a[res]);
        return v;
      };
      y = buildElementwise(b, loc, ins, resultType, body, shapes);
    }
    if (y.getType() != resultType)
      y = tensor::CastOp::create(b, loc, resultType, y);
    return y;
  }

  /// Whether the residual has the product's shape, at run time, when the
  /// types leave that open (a dynamic dim on either side); null when they
  /// settle it (equal, or a broadcast for sure) or there is no residual.
  static Value sameShapeAtRunTime(OpBuilder &b, Location loc, LinearOp op) {
    Value res = op.getResidual();
    if (!res || op.getGated())
      return nullptr;
    auto in = tensorType(op.getInput()), rt = tensorType(res);
    int64_t rank = in.getRank(), n = tensorType(op.getWeight()).getDimSize(1);
    if (rt.getRank() != rank)
      return nullptr;
    SmallVector<int64_t> product(in.getShape());
    product.back() = n;
    Value same;
    for (int64_t i = 0; i < rank; ++i) {
      int64_t p = product[i], r = rt.getDimSize(i);
      if (!ShapedType::isDynamic(p) && !ShapedType::isDynamic(r)) {
        if (p != r)
          return nullptr;
        continue;
      }
      // The product's dim: the input's, or the weight's columns last.
      Value pd =
          i + 1 < rank
              ? tensor::DimOp::create(b, loc, op.getInput(), i).getResult()
          : ShapedType::isDynamic(n)
              ? tensor::DimOp::create(b, loc, op.getWeight(), 1).getResult()
              : cIdx(b, loc, n);
      Value eq =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                tensor::DimOp::create(b, loc, res, i), pd);
      same = same ? arith::AndIOp::create(b, loc, same, eq) : eq;
    }
    return same;
  }

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    if (!tensorType(op.getInput()).getElementType().isIntOrFloat())
      return rw.notifyMatchFailure(op, "not a numeric matmul");
    // A residual that may broadcast (dynamic dims): the common case, the
    // product's shape, gets its own product and identity-map epilogue, which
    // transfuse-cpu-matmul-to-microkernel can fold into the GEMM call; the
    // broadcasting path keeps its own copy of the product. Neither branch
    // has an if of its own, so both yield buffers of the identity layout.
    Value y;
    if (Value same = sameShapeAtRunTime(rw, loc, op)) {
      // The regions are filled once the if is in the function: the run-time
      // checks inside them look up the module.
      auto ifOp = scf::IfOp::create(rw, loc, TypeRange{op.getType()}, same,
                                    /*withElseRegion=*/true);
      for (bool then : {true, false}) {
        OpBuilder b =
            OpBuilder::atBlockEnd(then ? ifOp.thenBlock() : ifOp.elseBlock());
        scf::YieldOp::create(
            b, loc,
            build(b, loc, op,
                  then ? ElementwiseShapes::Same : ElementwiseShapes::Differ));
      }
      y = ifOp.getResult(0);
    } else {
      y = build(rw, loc, op, ElementwiseShapes::Unknown);
    }
    rw.replaceOp(op, y);
    return success();
  }
};

struct LowerAttention : OpRewritePattern<AttentionOp> {
  LowerAttention(MLIRContext *ctx, bool runtimeKernel, bool bf16Products)
      : OpRewritePattern(ctx), runtimeKernel(runtimeKernel),
        bf16Products(bf16Products) {}
  bool runtimeKernel;
  bool bf16Products; // the kernel's flags bit 0

  /// out = transfuse_attention_f32(q, k, v, masks (rank 4, at most two),
  /// out, mask count, scale, softcap, flags). Q, K and V that are
  /// transposes of [B, S, H, D] tensors are read through transposed views
  /// of those. When the output's only reader is its transpose back to
  /// [B, Sq, H, Dv], the kernel writes that transpose's buffer through a
  /// transposed view, the transpose is replaced by it, and the result is
  /// null.
  Value callRuntimeKernel(PatternRewriter &rw, Location loc, AttentionOp op,
                          ArrayRef<Value> masks, RankedTensorType accType,
                          ArrayRef<Value> accDims) const {
    RuntimeKernelCall k(rw, loc);
    SmallVector<Value> args{k.readHeads(op.getQuery()),
                            k.readHeads(op.getKey()),
                            k.readHeads(op.getValue())};
    for (size_t i = 0; i < 2; ++i)
      args.push_back(i < masks.size() ? k.readMask(masks[i]) : args[0]);
    Operation *swap = op.getResult().hasOneUse()
                          ? *op.getResult().getUsers().begin()
                          : nullptr;
    if (!RuntimeKernelCall::swappedHeads(swap))
      swap = nullptr;
    auto swapType =
        swap ? cast<RankedTensorType>(swap->getResult(0).getType()) : nullptr;
    Value out = swap ? k.alloc(swapType,
                               {accDims[0], accDims[2], accDims[1], accDims[3]})
                     : k.alloc(accType, accDims);
    args.push_back(swap ? k.swapView(out) : k.any(out));
    args.push_back(k.i64(masks.size()));
    args.push_back(k.f32(op.getScale().convertToFloat()));
    args.push_back(k.f32(op.getSoftcap().convertToFloat()));
    args.push_back(k.i64(bf16Products));
    k.call(op, "transfuse_attention_f32", args);
    if (!swap)
      return k.tensorOf(out, accType);
    rw.replaceOp(swap, k.tensorOf(out, swapType));
    return Value();
  }

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value q = op.getQuery(), k = op.getKey(), v = op.getValue();
    auto qt = tensorType(q), kt = tensorType(k), vt = tensorType(v);
    Type elem = qt.getElementType();
    MLIRContext *ctx = rw.getContext();
    const int64_t dyn = ShapedType::kDynamic;
    SmallVector<Value> qd = getDimValues(rw, loc, q),
                       kd = getDimValues(rw, loc, k),
                       vd = getDimValues(rw, loc, v);
    Value B = qd[0], H = qd[1], Sq = qd[2], D = qd[3], Hkv = kd[1], Sk = kd[2],
          Dv = vd[3];
    auto eq = [&](Value a, Value b) {
      return arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, a, b);
    };
    auto all = [&](std::initializer_list<Value> conds) {
      Value ok = *conds.begin();
      for (Value c : llvm::drop_begin(conds))
        ok = arith::AndIOp::create(rw, loc, ok, c);
      return ok;
    };
    Value c0 = cIdx(rw, loc, 0), c1 = cIdx(rw, loc, 1);
    emitRuntimeCheck(
        rw, loc,
        all({eq(kd[0], B), eq(vd[0], B), eq(kd[3], D), eq(vd[1], Hkv),
             eq(vd[2], Sk),
             eq(arith::RemUIOp::create(
                    rw, loc, H, arith::MaxUIOp::create(rw, loc, Hkv, c1)),
                c0)}),
        "attention: query, key and value disagree on batch, heads, length or "
        "head dim");
    int64_t h = qt.getDimSize(1);
    if (h == dyn && (h = tensorType(op.getResult()).getDimSize(1)) != dyn)
      emitRuntimeCheck(
          rw, loc, eq(H, cIdx(rw, loc, h)),
          "attention: the query head count differs from the result's");
    // Each mask as rank 4. A static 1 broadcasts through the indexing map; a
    // mask with a dynamic dim (which may be 1 at run time) is read with
    // computed indices instead. No mask is ever expanded to the scores' size.
    struct Mask {
      Value value;
      SmallVector<Value> dims;     // run-time dims, rank 4
      SmallVector<bool> broadcast; // static 1
      bool dynamic = false;        // some dim is dynamic
    };
    SmallVector<Mask> masks;
    for (Value mv : op.getMasks()) {
      Mask m;
      auto mt = tensorType(mv);
      SmallVector<int64_t> shape(4 - mt.getRank(), 1);
      m.dims.assign(4 - mt.getRank(), c1);
      shape.append(mt.getShape().begin(), mt.getShape().end());
      SmallVector<Value> md = RuntimeKernelCall(rw, loc).maskDims(mv);
      m.dims.append(md.begin(), md.end());
      m.value = mt.getRank() == 4
                    ? mv
                    : reshapeTo(rw, loc, mv, RankedTensorType::get(shape, elem),
                                m.dims);
      Value scoreDims[] = {B, H, Sq, Sk};
      Value ok = arith::ConstantIntOp::create(rw, loc, 1, 1);
      for (int i = 0; i < 4; ++i) {
        m.broadcast.push_back(shape[i] == 1);
        m.dynamic |= shape[i] == dyn;
        if (!m.broadcast[i])
          ok = arith::AndIOp::create(
              rw, loc, ok,
              arith::OrIOp::create(rw, loc, eq(m.dims[i], scoreDims[i]),
                                   eq(m.dims[i], c1)));
      }
      emitRuntimeCheck(
          rw, loc, ok,
          "attention: a mask does not broadcast to [B, H, Sq, Sk]");
      masks.push_back(std::move(m));
    }
    auto accType = RankedTensorType::get(
        {qt.getDimSize(0), h, qt.getDimSize(2), vt.getDimSize(3)}, elem);
    if (runtimeKernel && takesAttentionKernel(op)) {
      SmallVector<Value> maskValues;
      for (const Mask &m : masks)
        maskValues.push_back(m.value);
      Value out =
          callRuntimeKernel(rw, loc, op, maskValues, accType, {B, H, Sq, Dv});
      if (!out) { // written through its transpose, which read it alone
        rw.eraseOp(op);
        return success();
      }
      if (out.getType() != op.getType())
        out = tensor::CastOp::create(rw, loc, op.getType(), out);
      rw.replaceOp(op, out);
      return success();
    }
    // Keys per block.
    Value skAtLeast1 = arith::MaxUIOp::create(rw, loc, Sk, c1);
    Value block = cIdx(rw, loc, op.getKvBlock());
    StringRef alg = op.getAlgorithm();
    if (alg == "materialized" || alg == "unselected") {
      block = skAtLeast1;
    } else if (alg == "by_length") {
      Value bytes = cIdx(rw, loc, elem.getIntOrFloatBitWidth() / 8);
      for (Value d : {B, H, Sq, Sk})
        bytes = arith::MulIOp::create(rw, loc, bytes, d);
      Value fits =
          arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::ule, bytes,
                                cIdx(rw, loc, op.getMaxMaterializedBytes()));
      block = arith::SelectOp::create(rw, loc, fits, skAtLeast1, block);
    }
    Value negInf = arith::ConstantOp::create(
        rw, loc,
        rw.getFloatAttr(
            elem,
            APFloat::getInf(cast<FloatType>(elem).getFloatSemantics(), true)));
    Value zero = scalarConstant(rw, loc, elem, 0);
    auto rowType =
        RankedTensorType::get({qt.getDimSize(0), h, qt.getDimSize(2)}, elem);
    auto filled = [&](OpBuilder &b, RankedTensorType t, ArrayRef<Value> dims,
                      Value val) {
      return linalg::FillOp::create(b, loc, val, createEmpty(b, loc, t, dims))
          .getResult(0);
    };
    Value m0 = filled(rw, rowType, {B, H, Sq}, negInf);
    Value l0 = filled(rw, rowType, {B, H, Sq}, zero);
    Value acc0 = filled(rw, accType, {B, H, Sq, Dv}, zero);
    double scale = op.getScale().convertToDouble(),
           softcap = op.getSoftcap().convertToDouble();
    auto par = utils::IteratorType::parallel,
         red = utils::IteratorType::reduction;
    auto map = [&](unsigned n, ArrayRef<AffineExpr> e) {
      return AffineMap::get(n, 0, e, ctx);
    };
    AffineExpr d0 = rw.getAffineDimExpr(0), d1 = rw.getAffineDimExpr(1),
               d2 = rw.getAffineDimExpr(2), d3 = rw.getAffineDimExpr(3);
    AffineMap id3 = map(3, {d0, d1, d2}), id4 = map(4, {d0, d1, d2, d3}),
              row4 = map(4, {d0, d1, d2});
    SmallVector<utils::IteratorType> par3(3, par), par4(4, par),
        rowReduce{par, par, par, red};
    // A linalg.generic into `init` whose body yields body(args).
    auto generic =
        [&](OpBuilder &b, Location l, Value init, ValueRange ins,
            ArrayRef<AffineMap> maps, ArrayRef<utils::IteratorType> iters,
            function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
          return linalg::GenericOp::create(
                     b, l, TypeRange{init.getType()}, ins, ValueRange{init},
                     maps, iters,
                     [&](OpBuilder &gb, Location gl, ValueRange a) {
                       linalg::YieldOp::create(gb, gl, body(gb, gl, a));
                     })
              .getResult(0);
        };
    auto mulF = [](OpBuilder &gb, Location gl, ValueRange a) -> Value {
      return arith::MulFOp::create(gb, gl, a[0], a[1]);
    };
    auto addF = [](OpBuilder &gb, Location gl, ValueRange a) -> Value {
      return arith::AddFOp::create(gb, gl, a[0], a[1]);
    };
    // exp(x - max), or 0 when the row max is -inf (a fully masked row, where
    // x - max would be NaN).
    auto expOrZero = [&](OpBuilder &gb, Location gl, ValueRange a) -> Value {
      Value e = math::ExpOp::create(gb, gl,
                                    arith::SubFOp::create(gb, gl, a[0], a[1]));
      Value masked = arith::CmpFOp::create(gb, gl, arith::CmpFPredicate::OEQ,
                                           a[1], negInf);
      return arith::SelectOp::create(gb, gl, masked, zero, e);
    };
    // out[b, h] += lhs[b, h] x rhs[b, kv head of h], one linalg.matmul per
    // (batch, head) on 2-D slices: transfuse-cpu-matmul-to-microkernel
    // sends each f32 one to the runtime's GEMM. The (batch, head) loop is an
    // scf.forall, which transfuse-cpu-parallelize-loops spreads over the
    // thread pool (one head per task, its GEMM on that thread).
    Value group = arith::DivUIOp::create(
        rw, loc, H, arith::MaxUIOp::create(rw, loc, Hkv, c1));
    // With `transposeRhs`, rhs[b, kv head] is read as its transpose (the
    // keys of Q K^T, [t, D]): a linalg.matmul with the transpose-B maps,
    // which the microkernel pass hands to the runtime as a transposed view,
    // so K is not copied into K^T at every block.
    auto perHeadMatmul = [&](OpBuilder &b, Location l, Value lhs, Value rhs,
                             Value out, bool transposeRhs,
                             bool zeroInit = false) {
      SmallVector<OpFoldResult> ubs{getAsOpFoldResult(B), getAsOpFoldResult(H)};
      auto loop =
          scf::ForallOp::create(b, l, ubs, ValueRange{out}, std::nullopt);
      OpBuilder b2 = OpBuilder::atBlockTerminator(loop.getBody());
      Value bi = loop.getInductionVar(0), hi = loop.getInductionVar(1);
      Value acc = loop.getRegionIterArgs()[0];
      Value kvHead = arith::DivUIOp::create(b2, l, hi, group);
      SmallVector<OpFoldResult> strides(4, b2.getIndexAttr(1));
      auto at = [&](Value head) {
        return SmallVector<OpFoldResult>{bi, head, b2.getIndexAttr(0),
                                         b2.getIndexAttr(0)};
      };
      auto sizes = [&](Value src) {
        return SmallVector<OpFoldResult>{b2.getIndexAttr(1), b2.getIndexAttr(1),
                                         tensor::getMixedSize(b2, l, src, 2),
                                         tensor::getMixedSize(b2, l, src, 3)};
      };
      auto slice = [&](Value src, Value head) {
        auto st = tensorType(src);
        auto type =
            RankedTensorType::get({st.getDimSize(2), st.getDimSize(3)}, elem);
        return tensor::ExtractSliceOp::create(b2, l, type, src, at(head),
                                              sizes(src), strides)
            .getResult();
      };
      Value accSlice = slice(acc, hi);
      // Each head's slice zeroed right before its product, which
      // transfuse-cpu-matmul-to-microkernel turns into a write of C (no
      // fill of the whole scores, no read of the zeros).
      if (zeroInit)
        accSlice = linalg::FillOp::create(b2, l, zero, accSlice).getResult(0);
      SmallVector<Value, 2> operands{slice(lhs, hi), slice(rhs, kvHead)};
      Value prod =
          transposeRhs
              ? linalg::MatmulTransposeBOp::create(
                    b2, l, TypeRange{accSlice.getType()}, operands,
                    ValueRange{accSlice})
                    .getResult(0)
              : linalg::MatmulOp::create(b2, l, TypeRange{accSlice.getType()},
                                         operands, ValueRange{accSlice})
                    .getResult(0);
      SmallVector<OpFoldResult> accSizes = sizes(acc);
      OpBuilder tb = OpBuilder::atBlockBegin(loop.getTerminator().getBody());
      tensor::ParallelInsertSliceOp::create(tb, l, prod, acc, at(hi), accSizes,
                                            strides);
      return loop.getResult(0);
    };
    auto loop = scf::ForOp::create(
        rw, loc, c0, Sk, block, ValueRange{m0, l0, acc0},
        [&](OpBuilder &b, Location l, Value kb, ValueRange iter) {
          Value m = iter[0], lsum = iter[1], acc = iter[2];
          Value rest = arith::SubIOp::create(b, l, Sk, kb);
          Value t = arith::MinUIOp::create(b, l, block, rest);
          auto slice = [&](Value src, ArrayRef<Value> dims,
                           RankedTensorType st) {
            SmallVector<OpFoldResult> offs{b.getIndexAttr(0), b.getIndexAttr(0),
                                           kb, b.getIndexAttr(0)};
            SmallVector<OpFoldResult> sizes{
                getAsOpFoldResult(dims[0]), getAsOpFoldResult(dims[1]),
                getAsOpFoldResult(t), getAsOpFoldResult(dims[3])};
            SmallVector<OpFoldResult> strides(4, b.getIndexAttr(1));
            auto type = RankedTensorType::get(
                {st.getDimSize(0), st.getDimSize(1), dyn, st.getDimSize(3)},
                elem);
            return tensor::ExtractSliceOp::create(b, l, type, src, offs, sizes,
                                                  strides)
                .getResult();
          };
          Value ks = slice(k, kd, kt), vs = slice(v, vd, vt);
          auto sType = RankedTensorType::get(
              {qt.getDimSize(0), h, qt.getDimSize(2), dyn}, elem);
          SmallVector<Value> sDims{B, H, Sq, t};
          Value sEmpty = createEmpty(b, l, sType, sDims);
          Value rowEmpty = createEmpty(b, l, rowType, {B, H, Sq});
          // s[b,h,i,j] = sum_d q[b,h,i,d] * k[b,hk,j,d]
          Value s = perHeadMatmul(b, l, q, ks, sEmpty, /*transposeRhs=*/true,
                                  /*zeroInit=*/true);
          // Scale and masks: static-shaped masks through indexing maps
          // (sliced to the block), dynamic ones read with computed indices.
          // One pass writes the scaled scores, which the row max and p
          // read (applying them in both instead costs more: a dynamic mask
          // is gathered twice).
          SmallVector<Value> ins{s};
          SmallVector<AffineMap> maps{id4};
          SmallVector<const Mask *> extracted;
          for (const Mask &mk : masks) {
            if (mk.dynamic) {
              extracted.push_back(&mk);
              continue;
            }
            ins.push_back(mk.broadcast[3]
                              ? mk.value
                              : slice(mk.value, mk.dims, tensorType(mk.value)));
            SmallVector<AffineExpr> e;
            for (int i = 0; i < 4; ++i)
              e.push_back(mk.broadcast[i] ? b.getAffineConstantExpr(0)
                                          : b.getAffineDimExpr(i));
            maps.push_back(map(4, e));
          }
          maps.push_back(id4);
          Value scaleV = scalarConstant(b, l, elem, scale);
          Value sm = generic(
              b, l, sEmpty, ins, maps, par4,
              [&](OpBuilder &gb, Location gl, ValueRange a) -> Value {
                Value x = arith::MulFOp::create(gb, gl, a[0], scaleV);
                if (softcap > 0.0) // cap * tanh(x / cap)
                  x = arith::MulFOp::create(
                      gb, gl,
                      math::TanhOp::create(
                          gb, gl,
                          arith::MulFOp::create(
                              gb, gl, x,
                              scalarConstant(gb, gl, elem, 1.0 / softcap))),
                      scalarConstant(gb, gl, elem, softcap));
                for (size_t i = 1; i + 1 < a.size(); ++i)
                  x = arith::AddFOp::create(gb, gl, x, a[i]);
                for (const Mask *mk : extracted) {
                  // Dim i is read at 0 when it is 1 at run time.
                  SmallVector<Value> idx;
                  for (int i = 0; i < 4; ++i) {
                    if (mk->broadcast[i]) {
                      idx.push_back(c0);
                      continue;
                    }
                    Value at = linalg::IndexOp::create(gb, gl, i);
                    if (i == 3)
                      at = arith::AddIOp::create(gb, gl, at, kb);
                    Value isOne = arith::CmpIOp::create(
                        gb, gl, arith::CmpIPredicate::eq, mk->dims[i], c1);
                    idx.push_back(
                        arith::SelectOp::create(gb, gl, isOne, c0, at));
                  }
                  x = arith::AddFOp::create(
                      gb, gl, x,
                      tensor::ExtractOp::create(gb, gl, mk->value, idx));
                }
                return x;
              });
          // New row max, the rescale factor exp(m - mNew) of the old partial
          // sums, and p = exp(s - mNew).
          Value mNew =
              generic(b, l, m, {sm}, {id4, row4}, rowReduce,
                      [](OpBuilder &gb, Location gl, ValueRange a) -> Value {
                        return arith::MaximumFOp::create(gb, gl, a[0], a[1]);
                      });
          Value corr = generic(b, l, rowEmpty, {m, mNew}, {id3, id3, id3}, par3,
                               expOrZero);
          Value p = generic(b, l, sEmpty, {sm, mNew}, {id4, row4, id4}, par4,
                            expOrZero);
          // l = l * corr + sum_j p;  acc = acc * corr + p x V_block.
          Value lScaled = generic(b, l, rowEmpty, {lsum, corr}, {id3, id3, id3},
                                  par3, mulF);
          Value lNew =
              generic(b, l, lScaled, {p}, {id4, row4}, rowReduce, addF);
          Value accScaled =
              generic(b, l, createEmpty(b, l, accType, {B, H, Sq, Dv}),
                      {acc, corr}, {id4, row4, id4}, par4, mulF);
          Value accNew =
              perHeadMatmul(b, l, p, vs, accScaled, /*transposeRhs=*/false);
          scf::YieldOp::create(b, l, ValueRange{mNew, lNew, accNew});
        });
    // out = acc / l, 0 for fully masked rows (l == 0).
    Value out =
        generic(rw, loc, createEmpty(rw, loc, accType, {B, H, Sq, Dv}),
                {loop.getResult(2), loop.getResult(1)}, {id4, row4, id4}, par4,
                [&](OpBuilder &gb, Location gl, ValueRange a) -> Value {
                  Value empty = arith::CmpFOp::create(
                      gb, gl, arith::CmpFPredicate::OEQ, a[1], zero);
                  Value y = arith::DivFOp::create(gb, gl, a[0], a[1]);
                  return arith::SelectOp::create(gb, gl, empty, zero, y);
                });
    if (out.getType() != op.getType())
      out = tensor::CastOp::create(rw, loc, op.getType(), out);
    rw.replaceOp(op, out);
    return success();
  }
};

} // namespace

void transfuse::cpu::populateLowerFusedPatterns(RewritePatternSet &patterns,
                                                bool attentionKernel,
                                                bool bf16Attention,
                                                bool normKernel) {
  patterns.add<LowerActivation<GeluOp>, LowerActivation<SiluOp>, LowerRotary,
               LowerLinear>(patterns.getContext());
  patterns.add<LowerLayerNormOp, LowerRmsNorm>(patterns.getContext(),
                                               normKernel);
  patterns.add<LowerAttention>(patterns.getContext(), attentionKernel,
                               bf16Attention);
}
