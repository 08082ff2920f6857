// bench_tokenizer: encodes WikiText-2 train (10.8 MB) with the byte-level BPE tokenizers
// (GPT-NeoX-20B tokenizer.json and GPT-2 encoder.json + vocab.bpe), one thread, whole text in one
// encode call. "cold" starts from an empty word cache (a fresh tokenizer per run), "warm" reuses it.
// Median of 3 each. benchmarks/peers/tokenizer_peer.py times Hugging Face `tokenizers` on the same file.
//   bench_tokenizer [TEXT_FILE]   (default $HYENA_DATA_DIR/wikitext-2/wiki.train.tokens)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <hyena/io/gpt2_tokenizer.hpp>
#include <hyena/io/hf_tokenizer.hpp>

using namespace hyena;

namespace {
double seconds_since(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

double median3(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <class Load>
void run(const char* name, const std::string& text, Load load) {
  std::vector<double> cold, warm;
  std::size_t tokens = 0;
  double load_s = 0;
  for (int i = 0; i < 3; ++i) {
    auto a = std::chrono::steady_clock::now();
    auto tok = load();
    load_s = seconds_since(a);
    a = std::chrono::steady_clock::now();
    tokens = tok->encode(text).size();
    cold.push_back(seconds_since(a));
    if (i == 0) {
      for (int k = 0; k < 3; ++k) {
        a = std::chrono::steady_clock::now();
        tok->encode(text);
        warm.push_back(seconds_since(a));
      }
    }
  }
  const double c = median3(cold), w = median3(warm);
  std::printf("{\"tokenizer\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"load_s\": %.3f, \"cold_s\": %.3f, "
              "\"warm_s\": %.3f, \"cold_MB_per_s\": %.2f}\n",
              name, text.size(), tokens, load_s, c, w, double(text.size()) / c / 1e6);
}
}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("HYENA_DATA_DIR");
  const std::filesystem::path data = (env && *env) ? env : HYENA_DEFAULT_DATA_DIR;
  const std::string file = argc > 1 ? argv[1] : (data / "wikitext-2" / "wiki.train.tokens").string();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "bench_tokenizer: cannot open %s\n", file.c_str());
    return 1;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  try {
    run("gpt-neox-20b", text, [&] {
      return io::load_hf_tokenizer((data / "gpt-neox-20b-tokenizer" / "20B_tokenizer.json").string());
    });
    run("gpt2", text, [&] { return io::load_gpt2_tokenizer(data / "gpt2-bpe"); });
  } catch (const hyena::error& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}
