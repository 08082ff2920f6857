// Error messages: the problem, the file and the value; the library's source location only in
// debug builds or with HYENA_ERROR_LOCATIONS=1.
#include <doctest/doctest.h>

#include <cstdlib>
#include <hyena/config.hpp>
#include <string>

namespace {
std::string message_of(int value) {
  try {
    HYENA_CHECK(value < 0, "token file ", "/tmp/x.bin", ": value ", value, " is not negative");
  } catch (const hyena::error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("errors: message, file and value; source location only when asked for") {
  ::unsetenv("HYENA_ERROR_LOCATIONS");
  const std::string plain = message_of(7);
  CHECK(plain.find("token file /tmp/x.bin: value 7 is not negative") == 0);
#ifdef NDEBUG
  CHECK(plain == "token file /tmp/x.bin: value 7 is not negative");
  ::setenv("HYENA_ERROR_LOCATIONS", "0", 1);
  CHECK(message_of(7) == plain);
#endif
  ::setenv("HYENA_ERROR_LOCATIONS", "1", 1);
  const std::string located = message_of(7);
  CHECK(located.find("token file /tmp/x.bin: value 7 is not negative [") == 0);
  CHECK(located.find("test_error_messages.cpp:") != std::string::npos);
  CHECK(located.back() == ']');
  ::unsetenv("HYENA_ERROR_LOCATIONS");
}
