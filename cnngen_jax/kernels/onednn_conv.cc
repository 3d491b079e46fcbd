// 2-D convolution through oneDNN, exposed to XLA:CPU as three FFI handlers: forward, gradient
// with respect to the input (backward data) and with respect to the kernel (backward weights).
// XLA's own CPU convolutions run 2-5x slower than oneDNN's on the large-map, narrow-channel
// layers of image generators; this is the same library PyTorch uses on CPU.
//
// Layouts follow the JAX side: activations NHWC, kernels HWIO, float32. Padding is symmetric
// (`padding` on the top/left); the bottom/right padding follows from the shapes, as in XLA.
// Primitives are built once per shape and cached; oneDNN runs them on its OpenMP threads. XLA may
// run several at once (one per device with fake CPU devices), so every call brings its own
// scratchpad: oneDNN's library-managed one is shared between primitives.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Logical (NCHW / OIHW) shapes of one convolution, read from the NHWC / HWIO buffers.
struct Geometry {
  Dims src, weights, dst, strides, pad_left, pad_right;

  Geometry(ffi::Span<const int64_t> src_nhwc, ffi::Span<const int64_t> weights_hwio,
           ffi::Span<const int64_t> dst_nhwc, int64_t stride, int64_t padding)
      : src{src_nhwc[0], src_nhwc[3], src_nhwc[1], src_nhwc[2]},
        weights{weights_hwio[3], weights_hwio[2], weights_hwio[0], weights_hwio[1]},
        dst{dst_nhwc[0], dst_nhwc[3], dst_nhwc[1], dst_nhwc[2]},
        strides{stride, stride},
        pad_left{padding, padding},
        pad_right{(dst[2] - 1) * stride + weights[2] - src[2] - padding,
                  (dst[3] - 1) * stride + weights[3] - src[3] - padding} {}

  memory::desc Activation(const Dims& dims) const {
    return memory::desc(dims, memory::data_type::f32, Tag::nhwc);
  }
  memory::desc AnyWeights() const {
    return memory::desc(weights, memory::data_type::f32, Tag::any);
  }
  memory::desc UserWeights() const {
    return memory::desc(weights, memory::data_type::f32, Tag::hwio);
  }

  dnnl::convolution_forward::primitive_desc Forward() const {
    return dnnl::convolution_forward::primitive_desc(
        Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
        Activation(src), AnyWeights(), Activation(dst), strides, pad_left, pad_right,
        UserScratchpad());
  }

  static dnnl::primitive_attr UserScratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  std::vector<int64_t> Key(int kind) const {
    std::vector<int64_t> key{kind};
    for (const Dims* dims : {&src, &weights, &dst, &strides, &pad_left, &pad_right}) {
      key.insert(key.end(), dims->begin(), dims->end());
    }
    return key;
  }
};

// A primitive with the scratchpad it needs per execution.
struct Step {
  dnnl::primitive primitive;
  memory::desc scratchpad;

  void Execute(dnnl::stream& stream, std::unordered_map<int, memory> args) const {
    args.insert({DNNL_ARG_SCRATCHPAD, memory(scratchpad, Engine())});
    primitive.execute(stream, args);
  }
};

// One convolution and, where its kernel layout is not HWIO, the reorder to or from HWIO.
struct Plan {
  Step conv;
  memory::desc weights_desc;  // the layout the convolution wants its (diff) weights in
  bool reorder_weights = false;
  Step weights_reorder;
};

enum Kind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

Step Reorder(const memory::desc& from, const memory::desc& to) {
  dnnl::reorder::primitive_desc pd(Engine(), from, Engine(), to, Geometry::UserScratchpad());
  return {dnnl::reorder(pd), pd.scratchpad_desc()};
}

Plan Build(const Geometry& g, Kind kind) {
  Plan plan;
  auto forward = g.Forward();
  if (kind == kForward) {
    plan.conv = {dnnl::convolution_forward(forward), forward.scratchpad_desc()};
    plan.weights_desc = forward.weights_desc();
  } else if (kind == kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.Activation(g.src), g.AnyWeights(),
        g.Activation(g.dst), g.strides, g.pad_left, g.pad_right, forward,
        Geometry::UserScratchpad());
    plan.conv = {dnnl::convolution_backward_data(pd), pd.scratchpad_desc()};
    plan.weights_desc = pd.weights_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, g.Activation(g.src), g.AnyWeights(),
        g.Activation(g.dst), g.strides, g.pad_left, g.pad_right, forward,
        Geometry::UserScratchpad());
    plan.conv = {dnnl::convolution_backward_weights(pd), pd.scratchpad_desc()};
    plan.weights_desc = pd.diff_weights_desc();
  }
  plan.reorder_weights = plan.weights_desc != g.UserWeights();
  if (plan.reorder_weights) {
    plan.weights_reorder = kind == kBackwardWeights ? Reorder(plan.weights_desc, g.UserWeights())
                                                    : Reorder(g.UserWeights(), plan.weights_desc);
  }
  return plan;
}

const Plan& CachedPlan(const Geometry& g, Kind kind) {
  static std::mutex mutex;
  static std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = plans[g.Key(kind)];
  if (!slot) slot = std::make_unique<Plan>(Build(g, kind));
  return *slot;
}

memory Wrap(const memory::desc& desc, const void* data) {
  return memory(desc, Engine(), const_cast<void*>(data));
}

// Runs one convolution. `src`, `weights` and `dst` point at the NHWC / HWIO buffers; `kind`
// says which of them are read and which one is written, as the argument names below spell out.
ffi::Error Run(const Geometry& g, Kind kind, const void* src, const void* weights,
               const void* dst) {
  try {
    const Plan& plan = CachedPlan(g, kind);
    dnnl::stream stream(Engine());
    memory user_weights = Wrap(g.UserWeights(), weights);
    memory conv_weights = plan.reorder_weights ? memory(plan.weights_desc, Engine()) : user_weights;
    if (plan.reorder_weights && kind != kBackwardWeights) {
      plan.weights_reorder.Execute(stream,
                                   {{DNNL_ARG_FROM, user_weights}, {DNNL_ARG_TO, conv_weights}});
    }
    const int src_arg = kind == kBackwardData ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC;
    const int weights_arg = kind == kBackwardWeights ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS;
    const int dst_arg = kind == kForward ? DNNL_ARG_DST : DNNL_ARG_DIFF_DST;
    plan.conv.Execute(stream, {{src_arg, Wrap(g.Activation(g.src), src)},
                               {weights_arg, conv_weights},
                               {dst_arg, Wrap(g.Activation(g.dst), dst)}});
    if (plan.reorder_weights && kind == kBackwardWeights) {
      plan.weights_reorder.Execute(stream,
                                   {{DNNL_ARG_FROM, conv_weights}, {DNNL_ARG_TO, user_weights}});
    }
    stream.wait();
    return ffi::Error::Success();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("oneDNN convolution failed: ") + e.what());
  }
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

ffi::Error Forward(F32 x, F32 kernel, F32Out y, int64_t stride, int64_t padding) {
  Geometry g(x.dimensions(), kernel.dimensions(), y->dimensions(), stride, padding);
  return Run(g, kForward, x.untyped_data(), kernel.untyped_data(), y->untyped_data());
}

ffi::Error BackwardData(F32 dy, F32 kernel, F32Out dx, int64_t stride, int64_t padding) {
  Geometry g(dx->dimensions(), kernel.dimensions(), dy.dimensions(), stride, padding);
  return Run(g, kBackwardData, dx->untyped_data(), kernel.untyped_data(), dy.untyped_data());
}

ffi::Error BackwardWeights(F32 x, F32 dy, F32Out dkernel, int64_t stride, int64_t padding) {
  Geometry g(x.dimensions(), dkernel->dimensions(), dy.dimensions(), stride, padding);
  return Run(g, kBackwardWeights, x.untyped_data(), dkernel->untyped_data(), dy.untyped_data());
}

}  // namespace

// All three take two float32 buffers and the convolution's stride and padding.
#define CNNGEN_CONV_HANDLER(name, fn)                      \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, fn,                  \
                                ffi::Ffi::Bind()           \
                                    .Arg<F32>()            \
                                    .Arg<F32>()            \
                                    .Ret<F32>()            \
                                    .Attr<int64_t>("stride") \
                                    .Attr<int64_t>("padding"))

CNNGEN_CONV_HANDLER(CnngenConvForward, Forward);
CNNGEN_CONV_HANDLER(CnngenConvBackwardData, BackwardData);
CNNGEN_CONV_HANDLER(CnngenConvBackwardWeights, BackwardWeights);
