//===- PlanBuffers.cpp - static-size buffers in one arena per call --------===//
//
// A compile-time memory plan: each function's buffers of static size that
// live and die in its entry block share one arena, placed by their live
// spans. See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/BufferAliasing.h"
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Interfaces/DataLayoutInterfaces.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_PLANBUFFERS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr int64_t kAlignment = 64;

/// One buffer to place: live over ops [start, end] of the entry block.
struct Buffer {
  memref::AllocOp alloc;
  memref::DeallocOp dealloc;
  int64_t start, end, bytes, offset = -1;
};

/// The size in bytes of a buffer of `type`, when it can be planned.
std::optional<int64_t> plannableBytes(MemRefType type, const DataLayout &dl) {
  if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
      type.getMemorySpace() || !type.getElementType().isIntOrIndexOrFloat())
    return std::nullopt;
  int64_t bytes =
      type.getNumElements() * (int64_t)dl.getTypeSize(type.getElementType());
  if (bytes == 0)
    return std::nullopt;
  return bytes;
}

/// The one `memref.dealloc` of `alloc`, in `block`, when nothing else frees
/// the buffer or compares its address: no other dealloc, pointer extraction
/// (the ownership checks of bufferization's dealloc helper compare base
/// pointers, and views of one arena share theirs) or return reaches the
/// buffer through views, casts, metadata or the results of calls that may
/// hand back an operand.
memref::DeallocOp soleDealloc(memref::AllocOp alloc, Block *block,
                              transfuse::cpu::CallResults &calls) {
  memref::DeallocOp found;
  SmallVector<Value> aliases{alloc.getResult()};
  llvm::SmallPtrSet<Value, 8> seen{alloc.getResult()};
  for (size_t i = 0; i < aliases.size(); ++i) {
    for (Operation *user : aliases[i].getUsers()) {
      if (auto d = dyn_cast<memref::DeallocOp>(user)) {
        if (aliases[i] != alloc.getResult() || found ||
            d->getBlock() != block)
          return nullptr;
        found = d;
        continue;
      }
      if (isa<memref::ExtractAlignedPointerAsIndexOp>(user) ||
          user->hasTrait<OpTrait::IsTerminator>())
        return nullptr;
      Value viewed = transfuse::cpu::viewedBuffer(user);
      bool view = viewed != nullptr;
      if (view && viewed != aliases[i])
        continue; // a view of something else, into this buffer's data
      auto call = dyn_cast<func::CallOp>(user);
      if (call && !calls.mayReturnOperand(call))
        continue; // fresh results
      if (view || isa<memref::ExtractStridedMetadataOp, CallOpInterface>(user))
        for (Value r : user->getResults())
          if (isa<BaseMemRefType>(r.getType()) && seen.insert(r).second)
            aliases.push_back(r);
    }
  }
  return found;
}

/// Places `buffers` largest first, each at the lowest aligned offset clear of
/// the placed buffers whose spans overlap its own; returns the arena size.
int64_t placeBuffers(MutableArrayRef<Buffer> buffers) {
  SmallVector<Buffer *> order;
  for (Buffer &b : buffers)
    order.push_back(&b);
  llvm::sort(order, [](Buffer *a, Buffer *b) {
    return a->bytes != b->bytes ? a->bytes > b->bytes : a->start < b->start;
  });
  int64_t arena = 0;
  SmallVector<Buffer *> placed;
  for (Buffer *b : order) {
    SmallVector<std::pair<int64_t, int64_t>> taken; // [begin, end) in bytes
    for (Buffer *p : placed)
      if (p->start <= b->end && b->start <= p->end)
        taken.push_back({p->offset, p->offset + p->bytes});
    llvm::sort(taken);
    int64_t offset = 0;
    for (auto [begin, end] : taken) {
      if (offset + b->bytes <= begin)
        break;
      offset = std::max<int64_t>(offset, llvm::alignTo(end, kAlignment));
    }
    b->offset = offset;
    arena = std::max(arena, offset + b->bytes);
    placed.push_back(b);
  }
  return (int64_t)llvm::alignTo(arena, kAlignment);
}

struct PlanBuffersPass
    : transfuse::cpu::impl::PlanBuffersBase<PlanBuffersPass> {
  /// Plans `f`; returns its arena size (0: none) and counts its allocs.
  int64_t planFunction(func::FuncOp f, transfuse::cpu::CallResults &calls,
                       int64_t &planned, int64_t &unplanned) {
    int64_t allocs = 0;
    f.walk([&](memref::AllocOp) { ++allocs; });
    unplanned += allocs;
    if (!f.getBody().hasOneBlock())
      return 0;
    Block &entry = f.getBody().front();
    auto ret = dyn_cast<func::ReturnOp>(entry.getTerminator());
    if (!ret)
      return 0;
    DataLayout dl = DataLayout::closest(f);
    llvm::DenseMap<Operation *, int64_t> position;
    for (auto [i, op] : llvm::enumerate(entry))
      position[&op] = (int64_t)i;
    SmallVector<Buffer> buffers;
    for (auto alloc : entry.getOps<memref::AllocOp>()) {
      std::optional<int64_t> bytes = plannableBytes(alloc.getType(), dl);
      if (!bytes || alloc.getAlignment().value_or(0) > kAlignment ||
          !alloc.getSymbolOperands().empty())
        continue;
      memref::DeallocOp dealloc = soleDealloc(alloc, &entry, calls);
      if (!dealloc)
        continue;
      buffers.push_back(
          {alloc, dealloc, position[alloc], position[dealloc], *bytes});
    }
    if (buffers.empty())
      return 0;
    int64_t arenaBytes = placeBuffers(buffers);

    OpBuilder b = OpBuilder::atBlockBegin(&entry);
    Location loc = f.getLoc();
    auto arena = memref::AllocOp::create(
        b, loc, MemRefType::get({arenaBytes}, b.getI8Type()),
        b.getI64IntegerAttr(kAlignment));
    for (Buffer &buf : buffers) {
      b.setInsertionPoint(buf.alloc);
      Value offset = arith::ConstantIndexOp::create(b, loc, buf.offset);
      auto view = memref::ViewOp::create(b, buf.alloc.getLoc(),
                                         buf.alloc.getType(), arena, offset,
                                         ValueRange{});
      buf.alloc.replaceAllUsesWith(view.getResult());
      buf.alloc.erase();
      buf.dealloc.erase();
    }
    b.setInsertionPoint(ret);
    memref::DeallocOp::create(b, loc, arena);
    f->setAttr("transfuse.arena_bytes", b.getI64IntegerAttr(arenaBytes));
    planned += (int64_t)buffers.size();
    unplanned -= (int64_t)buffers.size();
    return arenaBytes;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t planned = 0, unplanned = 0;
    llvm::DenseMap<StringAttr, int64_t> arenaOf;
    transfuse::cpu::CallResults calls(module);
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal())
        arenaOf[f.getSymNameAttr()] =
            planFunction(f, calls, planned, unplanned);

    // The most arena bytes live at once from a call of `name`: its own
    // arena and the largest among its callees (calls run one at a time;
    // the IR has no recursion).
    llvm::DenseMap<StringAttr, int64_t> peakOf;
    std::function<int64_t(StringAttr)> peak = [&](StringAttr name) {
      auto it = peakOf.find(name);
      if (it != peakOf.end())
        return it->second;
      peakOf[name] = 0; // a cycle adds nothing
      int64_t callees = 0;
      if (auto f = module.lookupSymbol<func::FuncOp>(name))
        f.walk([&](func::CallOp call) {
          callees = std::max(callees, peak(call.getCalleeAttr().getAttr()));
        });
      return peakOf[name] = arenaOf.lookup(name) + callees;
    };
    Builder b(module.getContext());
    int64_t mainPeak = peak(b.getStringAttr("main_graph"));
    module->setAttr(transfuse::cpu::kMemoryPlanAttr,
                    b.getDenseI64ArrayAttr({mainPeak, planned, unplanned}));
  }
};

} // namespace
