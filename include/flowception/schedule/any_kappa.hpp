// Run-time choice of κ: a type-erased KappaScheduler, for programs that pick the scheduler from
// a flag (one instantiation of the sampler instead of one per scheduler type).
#pragma once

#include <memory>
#include <string>

#include "flowception/core/errors.hpp"
#include "flowception/schedule/kappa.hpp"

namespace flowception {

/// A type-erased `KappaScheduler` holding any scheduler behind a shared, immutable pointer, so a
/// program can pick κ at run time with one instantiation of the sampler. Copies are cheap.
class AnyKappa {
 public:
  /// Wraps the scheduler `k`.
  /// AnyKappa itself is excluded before `KappaScheduler<K>` is checked: that concept asks whether K
  /// is copyable, which for K = AnyKappa would consult this very constructor (nvcc rejects the loop).
  template <class K>
    requires(!std::is_same_v<std::decay_t<K>, AnyKappa> && KappaScheduler<K>)
  AnyKappa(K k) : impl_(std::make_shared<Model<K>>(std::move(k))) {}

  /// linear | cubic | cosine | poly:P (P > 0). Throws `ConfigError` for another name or a bad P.
  static AnyKappa from_name(const std::string& name) {
    if (name == "linear") return LinearKappa{};
    if (name == "cubic") return PolynomialKappa(3.0);
    if (name == "cosine") return CosineKappa{};
    if (name.rfind("poly:", 0) == 0)
      return PolynomialKappa(detail::parse_number(std::string_view(name).substr(5), "the power of kappa '" + name + "'"));
    detail::fail<ConfigError>("unknown kappa '", name, "' (linear | cubic | cosine | poly:P)");
  }

  /// κ(s) of the wrapped scheduler.
  double kappa(double s) const { return impl_->kappa(s); }
  /// κ'(s) of the wrapped scheduler.
  double derivative(double s) const { return impl_->derivative(s); }
  /// κ⁻¹(p) of the wrapped scheduler.
  double inverse(double p) const { return impl_->inverse(p); }
  /// 1 − κ(s) of the wrapped scheduler.
  double survival(double s) const { return impl_->survival(s); }
  /// η(s) of the wrapped scheduler.
  double hazard(double s) const { return impl_->hazard(s); }
  /// The wrapped scheduler's name.
  std::string name() const { return impl_->name(); }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual double kappa(double) const = 0;
    virtual double derivative(double) const = 0;
    virtual double inverse(double) const = 0;
    virtual double survival(double) const = 0;
    virtual double hazard(double) const = 0;
    virtual std::string name() const = 0;
  };
  template <class K>
  struct Model final : Base {
    explicit Model(K k) : k_(std::move(k)) {}
    double kappa(double s) const override { return k_.kappa(s); }
    double derivative(double s) const override { return k_.derivative(s); }
    double inverse(double p) const override { return k_.inverse(p); }
    double survival(double s) const override { return k_.survival(s); }
    double hazard(double s) const override { return k_.hazard(s); }
    std::string name() const override { return k_.name(); }
    K k_;
  };
  std::shared_ptr<const Base> impl_;
};

static_assert(KappaScheduler<AnyKappa>);

}  // namespace flowception
