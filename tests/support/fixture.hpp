// fixture.hpp: reads golden fixtures written by tests/reference/*.py.
//
// Format (JSON): {"meta": {...}, "tensors": {"name": {"shape": [..], "data": [flat row-major]}}}
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <hyena/tensor/tensor.hpp>

namespace hyena::testing {

struct fixture {
  nlohmann::json meta;
  nlohmann::json tensors;

  static fixture load(const std::string& relative) {
    std::string path = std::string(HYENA_TEST_SOURCE_DIR) + "/reference/fixtures/" + relative;
    std::ifstream in(path);
    HYENA_CHECK(in.good(), "fixture: cannot open ", path);
    nlohmann::json j = nlohmann::json::parse(in);
    return {j.value("meta", nlohmann::json::object()), j.at("tensors")};
  }
  bool has(const std::string& name) const { return tensors.contains(name); }
  shape shape_of(const std::string& name) const {
    shape s;
    for (auto d : tensors.at(name).at("shape")) s.dims[s.rank++] = d.get<index_t>();
    return s;
  }
  template <class T>
  std::vector<T> values(const std::string& name) const {
    HYENA_CHECK(has(name), "fixture: no tensor named ", name);
    std::vector<T> out;
    for (auto& v : tensors.at(name).at("data")) out.push_back(static_cast<T>(v.get<double>()));
    return out;
  }
  // Copies the named tensor into `dst`, checking the element count.
  template <class T>
  void copy_to(const std::string& name, view<T> dst) const {
    auto v = values<T>(name);
    HYENA_CHECK(static_cast<index_t>(v.size()) == dst.numel(), "fixture: ", name, " has ", v.size(),
                " values, destination has ", dst.numel());
    std::copy(v.begin(), v.end(), dst.data);
  }
};

// max |a - b| / max(max |b|, tiny): a relative error over the whole tensor.
template <class T>
double relative_error(const T* a, const std::vector<double>& b) {
  double num = 0, den = 1e-30;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(double(a[i]))) return INFINITY;
    num = std::max(num, std::abs(double(a[i]) - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

}  // namespace hyena::testing
