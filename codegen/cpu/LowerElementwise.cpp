//===- LowerElementwise.cpp - elementwise graph ops to linalg.generic -----===//
//
// Every elementwise op becomes one linalg.generic built by buildElementwise;
// this file only says what each op computes on scalars.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace transfuse;
using namespace transfuse::transformer;

namespace {

Value convertScalar(OpBuilder &b, Location loc, Value v, Type to) {
  Type from = v.getType();
  if (from == to)
    return v;
  auto fi = dyn_cast<IntegerType>(from), ti = dyn_cast<IntegerType>(to);
  auto ff = dyn_cast<FloatType>(from), tf = dyn_cast<FloatType>(to);
  if (fi && fi.getWidth() == 1) {
    if (ti)
      return arith::ExtUIOp::create(b, loc, to, v);
    if (tf)
      return arith::UIToFPOp::create(b, loc, to, v);
  }
  if (ti && ti.getWidth() == 1) {
    Value zero = cpu::scalarConstant(b, loc, from, 0);
    if (fi)
      return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, v, zero);
    if (ff)
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, v, zero);
  }
  if (fi && ti)
    return fi.getWidth() < ti.getWidth()
               ? (Value)arith::ExtSIOp::create(b, loc, to, v)
               : (Value)arith::TruncIOp::create(b, loc, to, v);
  if (ff && tf)
    return ff.getWidth() < tf.getWidth()
               ? (Value)arith::ExtFOp::create(b, loc, to, v)
               : (Value)arith::TruncFOp::create(b, loc, to, v);
  if (fi && tf)
    return arith::SIToFPOp::create(b, loc, to, v);
  if (ff && ti)
    return arith::FPToSIOp::create(b, loc, to, v);
  return {};
}

/// The scalar computation of one elementwise op; null when the element type
/// is not handled (the pattern then fails and the op is reported).
Value buildScalar(Operation *op, OpBuilder &b, Location loc, ValueRange a,
                  Type outElem) {
  Type t = a[0].getType();
  bool isF = isa<FloatType>(t);
  bool isI = isa<IntegerType>(t);
  if (!isF && !isI)
    return {};
  return llvm::TypeSwitch<Operation *, Value>(op)
      .Case([&](AddOp) -> Value {
        if (isF) return arith::AddFOp::create(b, loc, a[0], a[1]);
        return arith::AddIOp::create(b, loc, a[0], a[1]);
      })
      .Case([&](SubOp) -> Value {
        if (isF) return arith::SubFOp::create(b, loc, a[0], a[1]);
        return arith::SubIOp::create(b, loc, a[0], a[1]);
      })
      .Case([&](MulOp) -> Value {
        if (isF) return arith::MulFOp::create(b, loc, a[0], a[1]);
        return arith::MulIOp::create(b, loc, a[0], a[1]);
      })
      .Case([&](DivOp) -> Value {
        if (isF) return arith::DivFOp::create(b, loc, a[0], a[1]);
        return arith::DivSIOp::create(b, loc, a[0], a[1]);
      })
      .Case([&](PowOp) -> Value {
        if (isF) {
          Value e = convertScalar(b, loc, a[1], t);
          return e ? (Value)math::PowFOp::create(b, loc, a[0], e) : Value();
        }
        Value e = convertScalar(b, loc, a[1], t);
        return e ? (Value)math::IPowIOp::create(b, loc, a[0], e) : Value();
      })
      .Case([&](MinOp) -> Value {
        if (isF) return arith::MinimumFOp::create(b, loc, a[0], a[1]);
        return arith::MinSIOp::create(b, loc, a[0], a[1]);
      })
      .Case([&](MaxOp) -> Value {
        if (isF) return arith::MaximumFOp::create(b, loc, a[0], a[1]);
        return arith::MaxSIOp::create(b, loc, a[0], a[1]);
      })
      .Case([&](EqualOp) -> Value {
        if (isF)
          return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, a[0], a[1]);
        return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, a[0], a[1]);
      })
      .Case([&](LessOp) -> Value {
        if (isF)
          return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, a[0], a[1]);
        return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, a[0], a[1]);
      })
      .Case([&](GreaterOp) -> Value {
        if (isF)
          return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, a[0], a[1]);
        return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, a[0], a[1]);
      })
      .Case([&](ModOp mod) -> Value {
        if (isF)
          return arith::RemFOp::create(b, loc, a[0], a[1]);
        Value r = arith::RemSIOp::create(b, loc, a[0], a[1]);
        if (mod.getFmod())
          return r;
        // Python semantics: a non-zero remainder takes the divisor's sign.
        Value zero = cpu::scalarConstant(b, loc, t, 0);
        Value rNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, r, zero);
        Value bNeg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, a[1], zero);
        Value rNonZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, r, zero);
        Value differ = arith::XOrIOp::create(b, loc, rNeg, bNeg);
        Value fix = arith::AndIOp::create(b, loc, rNonZero, differ);
        return arith::SelectOp::create(b, loc, fix, arith::AddIOp::create(b, loc, r, a[1]), r);
      })
      .Case([&](AndOp) -> Value { return arith::AndIOp::create(b, loc, a[0], a[1]); })
      .Case([&](OrOp) -> Value { return arith::OrIOp::create(b, loc, a[0], a[1]); })
      .Case([&](NotOp) -> Value {
        Value one = arith::ConstantIntOp::create(b, loc, 1, 1);
        return arith::XOrIOp::create(b, loc, a[0], one);
      })
      .Case([&](SqrtOp) -> Value { return math::SqrtOp::create(b, loc, a[0]); })
      .Case([&](ReciprocalOp) -> Value {
        return arith::DivFOp::create(b, loc, cpu::scalarConstant(b, loc, t, 1), a[0]);
      })
      .Case([&](ErfOp) -> Value { return math::ErfOp::create(b, loc, a[0]); })
      .Case([&](TanhOp) -> Value { return math::TanhOp::create(b, loc, a[0]); })
      .Case([&](ExpOp) -> Value { return math::ExpOp::create(b, loc, a[0]); })
      .Case([&](LogOp) -> Value { return math::LogOp::create(b, loc, a[0]); })
      .Case([&](SinOp) -> Value { return math::SinOp::create(b, loc, a[0]); })
      .Case([&](CosOp) -> Value { return math::CosOp::create(b, loc, a[0]); })
      .Case([&](FloorOp) -> Value { return math::FloorOp::create(b, loc, a[0]); })
      .Case([&](CeilOp) -> Value { return math::CeilOp::create(b, loc, a[0]); })
      .Case([&](NegOp) -> Value {
        if (isF) return arith::NegFOp::create(b, loc, a[0]);
        return arith::SubIOp::create(b, loc, cpu::scalarConstant(b, loc, t, 0), a[0]);
      })
      .Case([&](AbsOp) -> Value {
        if (isF) return math::AbsFOp::create(b, loc, a[0]);
        return math::AbsIOp::create(b, loc, a[0]);
      })
      .Case([&](ReluOp) -> Value {
        Value zero = cpu::scalarConstant(b, loc, t, 0);
        if (isF) {
          Value gt = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UGT, a[0], zero);
          return arith::SelectOp::create(b, loc, gt, a[0], zero);
        }
        return arith::MaxSIOp::create(b, loc, a[0], zero);
      })
      .Case([&](SigmoidOp) -> Value {
        Value one = cpu::scalarConstant(b, loc, t, 1);
        Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, a[0]));
        return arith::DivFOp::create(b, loc, one, arith::AddFOp::create(b, loc, one, e));
      })
      .Case([&](CastOp) -> Value { return convertScalar(b, loc, a[0], outElem); })
      .Case([&](IsNaNOp) -> Value {
        return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, a[0], a[0]);
      })
      .Case([&](WhereOp) -> Value {
        return arith::SelectOp::create(b, loc, a[0], a[1], a[2]);
      })
      .Default([&](Operation *) -> Value { return {}; });
}

/// Lowers any elementwise graph op (all operands broadcast, one result).
struct LowerElementwiseOp : RewritePattern {
  LowerElementwiseOp(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), 1, ctx) {}

  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    if (!isElementwiseOp(op))
      return failure();
    auto outType = cast<RankedTensorType>(op->getResult(0).getType());
    Type outElem = outType.getElementType();
    // Check once, outside the body, that the scalar builder handles these
    // element types, so that a failed match leaves no IR behind.
    bool supported = true;
    {
      OpBuilder probe(op->getContext());
      Block block;
      for (Value v : op->getOperands())
        block.addArgument(cast<RankedTensorType>(v.getType()).getElementType(),
                          op->getLoc());
      probe.setInsertionPointToStart(&block);
      Value v = buildScalar(op, probe, op->getLoc(), block.getArguments(), outElem);
      supported = v && v.getType() == outElem;
      while (!block.empty())
        block.back().erase();
    }
    if (!supported)
      return rewriter.notifyMatchFailure(op, "unsupported element type");
    Value result = cpu::buildElementwise(
        rewriter, op->getLoc(), op->getOperands(), outType,
        [&](OpBuilder &b, Location loc, ValueRange args) {
          return buildScalar(op, b, loc, args, outElem);
        });
    rewriter.replaceOp(op, result);
    return success();
  }
};
} // namespace

void transfuse::cpu::populateLowerElementwisePatterns(RewritePatternSet &patterns) {
  patterns.add<LowerElementwiseOp>(patterns.getContext());
}
