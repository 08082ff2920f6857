// config.hpp: version, the error type and the checks every other header uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#define HYENA_VERSION_MAJOR 0
#define HYENA_VERSION_MINOR 1
#define HYENA_VERSION_PATCH 0

// Functions that CUDA kernels may also call.
#if defined(__CUDACC__)
#define HYENA_HOST_DEVICE __host__ __device__
#else
#define HYENA_HOST_DEVICE
#endif

namespace hyena {

using index_t = std::int64_t;

// The one exception type of the library. Bad input never aborts: it throws this,
// with a message that names the problem.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A loss or gradient that came out NaN or infinite: the trainer may skip the step
// (trainer_options::skip_nonfinite) where any other error stops the run.
class nonfinite_error : public error {
 public:
  using error::error;
};

namespace detail {
// Whether error messages end with the library's source location "[file.hpp:line]": on in
// debug builds (NDEBUG not defined) and whenever HYENA_ERROR_LOCATIONS=1 is set in the
// environment; off otherwise, so users see only the problem, their file and the value.
inline bool error_locations() {
#ifndef NDEBUG
  return true;
#else
  const char* e = std::getenv("HYENA_ERROR_LOCATIONS");
  return e && e[0] == '1' && e[1] == '\0';
#endif
}

template <class... Parts>
[[noreturn]] inline void fail(const char* file, int line, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  if (error_locations()) os << " [" << file << ":" << line << "]";
  throw error(os.str());
}
}  // namespace detail

}  // namespace hyena

// HYENA_CHECK(cond, "message", value, ...): throws hyena::error when cond is false. The message
// is the parts streamed in order; the source location follows only as detail::error_locations() says.
#define HYENA_CHECK(cond, ...)                                    \
  do {                                                            \
    if (!(cond)) ::hyena::detail::fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

#define HYENA_FAIL(...) ::hyena::detail::fail(__FILE__, __LINE__, __VA_ARGS__)
